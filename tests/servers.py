"""Toxiproxy API servers for the tests: the embedded drop-in server
(``python -m pytest_chaos.proxy``) and the real Go ``toxiproxy-server``, as processes."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# httpx imports httpcore lazily, on its first client. Were that first client made inside an
# in-process pytester run, pytester would unload httpcore afterwards, and the next inner run
# would import it afresh: httpx then no longer recognises httpcore's exceptions, and a
# refused connection escapes as a raw httpcore.ConnectError. Importing it here prevents that.
import httpcore  # noqa: F401
import httpx
import pytest

import pytest_chaos
from pytest_chaos.proxy.backends import BackendError, find_toxiproxy_binary, free_port

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance"
#: The checkout whose pytest_chaos this run imported. Processes the tests start (pytester
#: subprocesses, the embedded server they spawn) must import the same one, not whatever
#: copy happens to be installed.
CODE_ROOT = Path(pytest_chaos.__file__).resolve().parents[1]


def this_checkout_env() -> dict[str, str]:
    """The environment for a server process: this checkout first on PYTHONPATH."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(CODE_ROOT), path]))}


def isolate_chaos_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """For inner pytest sessions: no chaos settings from outside, and this checkout first
    on PYTHONPATH of every process they start."""
    for name in ("PYTEST_CHAOS_SEED", "PYTEST_CHAOS_TOXIPROXY", "PYTEST_CHAOS_DRY_RUN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(CODE_ROOT), prepend=os.pathsep)


@dataclass
class ApiServer:
    """A running Toxiproxy-compatible API server."""

    kind: str  # "embedded" or "real"
    url: str
    process: subprocess.Popen[bytes]
    argv: list[str] = field(default_factory=list)  # how it was started (with a log)
    log: Path | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def clear(self) -> None:
        """Delete every proxy, so each test starts from an empty server."""
        with self.client() as http:
            for name in http.get("/proxies").json():
                http.delete(f"/proxies/{name}")

    def restart(self) -> None:
        """Stop the server and start it again, empty, on the same port."""
        assert self.log is not None, "only a server started with a log restarts"
        stop_server(self)
        port = int(self.url.rsplit(":", 1)[1])
        self.process = start_logged_server(self.kind, self.argv, port, self.log).process


def start_server(kind: str, argv: list[str], port: int) -> ApiServer:
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=this_checkout_env()
    )
    return wait_until_serving(kind, process, port)


def start_logged_server(kind: str, argv: list[str], port: int, log: Path) -> ApiServer:
    """Like start_server, but stdout and stderr go to the file ``log``: a test can read
    everything the server wrote, and a chatty server can never block on a full pipe."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env=this_checkout_env()
        )
    try:
        server = wait_until_serving(kind, process, port)
    except RuntimeError as error:
        raise RuntimeError(f"{error}{log.read_text(errors='replace')}") from None
    server.argv, server.log = argv, log
    return server


def wait_until_serving(kind: str, process: subprocess.Popen[bytes], port: int) -> ApiServer:
    """Poll ``/version`` until the server answers; kill it and raise if it dies or is slow."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/version", timeout=1).status_code == 200:
                return ApiServer(kind, url, process)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            err = process.communicate()[1] or b""  # None when stderr is not a pipe
            raise RuntimeError(f"{kind} server did not start: {err.decode(errors='replace')}")
        time.sleep(0.05)


def stop_server(server: ApiServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def require_real_server() -> str:
    """The real server's binary, or skip (fail, where CI demands it) saying how to get it."""
    try:
        return find_toxiproxy_binary()
    except BackendError as error:
        if os.environ.get("PYTEST_CHAOS_REQUIRE_REAL_TOXIPROXY") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))


__all__ = [
    "CODE_ROOT",
    "CONFORMANCE",
    "ApiServer",
    "free_port",
    "isolate_chaos_env",
    "require_real_server",
    "start_logged_server",
    "start_server",
    "stop_server",
    "this_checkout_env",
    "wait_until_serving",
]
