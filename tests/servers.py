"""Toxiproxy API servers for the tests: the embedded drop-in server
(``python -m pytest_chaos.proxy``) and the real Go ``toxiproxy-server``, as processes."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pytest_chaos.proxy.backends import BackendError, find_toxiproxy_binary, free_port

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance"


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


def require_real_server() -> str:
    """The real server's binary, or skip (fail, where CI demands it) saying how to get it."""
    try:
        return find_toxiproxy_binary()
    except BackendError as error:
        if os.environ.get("PYTEST_CHAOS_REQUIRE_REAL_TOXIPROXY") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))


__all__ = [
    "CONFORMANCE",
    "ApiServer",
    "free_port",
    "require_real_server",
    "start_logged_server",
    "start_server",
    "stop_server",
    "wait_until_serving",
]
