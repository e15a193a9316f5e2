"""A tiny shop for experiments: ``/health`` answers at once; ``/order`` asks a backend for
stock (through a proxy the test breaks) and answers 200, or, when resilient, a fallback 200
after a short timeout. Copied into inner pytest sessions by the experiment tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(b'{"stock": 3}')

    def _answer(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def shop_handler(backend_url: str, timeout_s: float | None) -> type[Backend]:
    """The shop: with ``timeout_s`` it gives up on the backend and answers from a fallback;
    without one it waits as long as the backend does."""

    client = httpx.Client(timeout=timeout_s)  # one per shop, shared by its threads

    class Shop(Backend):
        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(b"ok")
                return
            try:
                stock = client.get(backend_url).text
            except httpx.HTTPError:
                stock = '{"stock": "unknown"}'  # the fallback of a resilient shop
            self._answer(stock.encode())

    return Shop


class QuietServer(ThreadingHTTPServer):
    """A server that does not print the errors of clients that went away (a load
    generator's request that timed out, a probe that gave up)."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port; yield ``host:port``."""
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
