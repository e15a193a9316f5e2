"""Starting proxy servers for the benchmark and talking to them over the Toxiproxy HTTP API.

Both the embedded drop-in server (``python -m pytest_chaos.proxy``) and the real
``toxiproxy-server`` run as subprocesses on loopback, can be moved between CPUs while they
run, and are driven only through their HTTP API, as a user would. The echo, sink and source
servers run in a subprocess of their own (``servers.py``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
#: How long a server may take to answer ``GET /version`` after it was started.
START_TIMEOUT_S = 15.0

Address = tuple[str, int]


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def parse_address(text: str) -> Address:
    """``"127.0.0.1:1234"`` -> ``("127.0.0.1", 1234)``."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def real_server_binary() -> Path | None:
    """``$TOXIPROXY_SERVER``, else ``~/go/bin/server``, else ``toxiproxy-server`` on PATH."""
    candidates = [os.environ.get("TOXIPROXY_SERVER"), str(Path.home() / "go/bin/server")]
    candidates.append(shutil.which("toxiproxy-server"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return Path(candidate)
    return None


def embedded_command(port: int, seed: int, uvloop: bool) -> list[str]:
    """The drop-in server's command line (``python -m pytest_chaos.proxy``)."""
    command = [sys.executable, "-m", "pytest_chaos.proxy", "--host", LOOPBACK]
    command += ["--port", str(port), "--seed", str(seed)]
    return command if uvloop else [*command, "--no-uvloop"]


def real_command(binary: Path, port: int, seed: int) -> list[str]:
    """The real ``toxiproxy-server`` command line."""
    return [str(binary), "-host", LOOPBACK, "-port", str(port), "-seed", str(seed)]


def set_affinity(pid: int, cpus: set[int]) -> None:
    """Move every thread of process ``pid`` (a Go server has several) onto ``cpus``."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(tid), cpus)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of process ``pid`` (from /proc)."""
    ticks = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class ApiError(RuntimeError):
    """The Toxiproxy API answered with an unexpected status."""


@dataclass
class ApiClient:
    """The few Toxiproxy HTTP API calls the benchmark needs, over ``http.client``."""

    port: int

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return the decoded JSON answer (None when empty)."""
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=10)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        if response.status >= 300:
            raise ApiError(f"{method} {path} -> {response.status}: {raw[:200]!r}")
        return json.loads(raw) if raw.strip() else None

    def create_proxy(self, name: str, upstream: Address) -> Address:
        """``POST /proxies`` on an ephemeral loopback port; return where it listens."""
        spec = {"name": name, "listen": f"{LOOPBACK}:0", "upstream": f"{upstream[0]}:{upstream[1]}"}
        return parse_address(self.call("POST", "/proxies", spec)["listen"])

    def add_toxic(self, proxy: str, name: str, kind: str, stream: str, **attributes: int) -> None:
        """``POST /proxies/{proxy}/toxics``."""
        spec = {"name": name, "type": kind, "stream": stream, "attributes": attributes}
        self.call("POST", f"/proxies/{proxy}/toxics", spec)

    def remove_toxic(self, proxy: str, name: str) -> None:
        """``DELETE /proxies/{proxy}/toxics/{name}``."""
        self.call("DELETE", f"/proxies/{proxy}/toxics/{name}")


def _pin(cpus: set[int] | None) -> Any:
    """A ``preexec_fn`` that pins the child (and every thread it starts) to ``cpus``."""
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


@dataclass
class ServerProcess:
    """A proxy server subprocess and its API; stopped by :meth:`stop` or ``with``."""

    command: Sequence[str]
    port: int
    cpus: set[int] | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    log: IO[bytes] | None = field(default=None, init=False)
    final_log: str = field(default="", init=False)

    def start(self) -> ApiClient:
        """Start the process (its output goes to a temporary log) and wait for its API."""
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            list(self.command),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_pin(self.cpus),
            env=self.env,
            cwd=self.cwd,
        )
        api = ApiClient(self.port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ApiError):
                api.call("GET", "/version")
                return api
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{' '.join(self.command)} did not answer within {START_TIMEOUT_S} s")

    def pin(self, cpus: set[int] | None) -> None:
        """Move the running server onto ``cpus`` (None: leave it where it is)."""
        if cpus and self.process is not None:
            set_affinity(self.process.pid, cpus)

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread of the server so far."""
        if self.process is None:
            return 0.0
        return process_cpu_seconds(self.process.pid)

    def log_tail(self, size: int = 2000) -> str:
        """The end of what the server printed (kept after it stopped)."""
        if self.log is None:
            return self.final_log[-size:]
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-size:]

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.log is not None:
            self.final_log = self.log_tail()
            self.log.close()
            self.log = None

    def __enter__(self) -> ApiClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def echo_sink_source() -> Iterator[tuple[Address, Address, Address]]:
    """Run ``servers.py`` (on this process's CPUs); yield the echo, sink and source
    addresses."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "servers.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().split()
        if not line or line[0] != "PORTS":
            raise RuntimeError("the echo/sink/source servers did not start")
        echo, sink, source = ((LOOPBACK, int(port)) for port in line[1:4])
        yield echo, sink, source
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the servers exit when their stdin closes
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
