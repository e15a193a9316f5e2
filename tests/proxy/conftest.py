"""Fixtures that start Toxiproxy API servers for the proxy tests: the embedded drop-in
server (``python -m pytest_chaos.proxy``) and the real Go ``toxiproxy-server``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT.parent / "shared" / "conformance"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiServer:
    """A running Toxiproxy-compatible API server."""

    kind: str  # "embedded" or "real"
    url: str
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def clear(self) -> None:
        """Delete every proxy, so each test starts from an empty server."""
        with self.client() as http:
            for name in http.get("/proxies").json():
                http.delete(f"/proxies/{name}")


def start_server(kind: str, argv: list[str], port: int) -> ApiServer:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return wait_until_serving(kind, process, port)


def start_logged_server(kind: str, argv: list[str], port: int, log: Path) -> ApiServer:
    """Like start_server, but stdout and stderr go to the file ``log``: a test can read
    everything the server wrote, and a chatty server can never block on a full pipe."""
    with log.open("ab") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        return wait_until_serving(kind, process, port)
    except RuntimeError as error:
        raise RuntimeError(f"{error}{log.read_text(errors='replace')}") from None


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


def real_server_binary() -> str | None:
    """The Go toxiproxy-server: $TOXIPROXY_SERVER, the go-installed ``server``, or PATH."""
    candidates = [os.environ.get("TOXIPROXY_SERVER", "")]
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    candidates.append(str(Path(gopath) / "bin" / "server"))
    candidates.append(shutil.which("toxiproxy-server") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_real_server() -> str:
    binary = real_server_binary()
    if binary is None:
        reason = (
            "the real toxiproxy-server was not found ($TOXIPROXY_SERVER, ~/go/bin/server or "
            "toxiproxy-server on PATH); install it with `go install "
            "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0`"
        )
        if os.environ.get("PYTEST_CHAOS_REQUIRE_REAL_TOXIPROXY") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "pytest_chaos.proxy",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--seed",
        "1",
    ]
    # Logs go to a file: a session-long server writing into a pipe nobody reads would block
    # once the pipe's 64 KiB buffer fills, and every later test would hang.
    log = tmp_path_factory.mktemp("embedded-server") / "server.log"
    server = start_logged_server("embedded", argv, port, log)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    binary = require_real_server()
    port = free_port()
    argv = [binary, "-host", "127.0.0.1", "-port", str(port)]
    log = tmp_path_factory.mktemp("real-server") / "server.log"  # see embedded_server
    server = start_logged_server("real", argv, port, log)
    yield server
    stop_server(server)


@pytest.fixture(params=["embedded", "real"])
def api_server(request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    """Each test using this runs twice: on the embedded server and on the real one."""
    if request.param == "real":
        request.applymarker(pytest.mark.realserver)
    server: ApiServer = request.getfixturevalue(f"{request.param}_server")
    server.clear()
    yield server
    server.clear()


@pytest.fixture
def conformance() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance data not found at {CONFORMANCE} (it lives in ../shared)")
    return CONFORMANCE
