"""A real HTTP server on 127.0.0.1 for the HTTP fault tests, in a thread of the test process,
so a test can count the requests that reached it."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

#: ``GET /text``: a short body of known size.
TEXT_BODY = b"pytest-chaos: the server answered\n"
#: ``GET /big``: 256 KiB, several reads of the client's socket.
BIG_BODY = bytes(i % 251 for i in range(256 * 1024))
#: ``GET /chunked``: this many chunks of ``CHUNK`` bytes, sent with chunked encoding.
CHUNKS = 32
CHUNK = b"c" * 1024
#: How long a connection may stay idle before the server drops it.
IDLE_TIMEOUT_S = 10.0
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


class LocalServer:
    """An HTTP/1.1 server on a free port of 127.0.0.1, serving:

    - ``GET /text``: :data:`TEXT_BODY`; ``GET /json``: ``{"ok": true}``;
    - ``GET /big``: :data:`BIG_BODY` with a Content-Length; ``GET /chunked``: :data:`CHUNKS`
      chunks of :data:`CHUNK`;
    - ``GET /orders/<id>``: ``{"id": <id>, "status": "shipped"}`` (404 for ``missing``);
    - ``POST /echo``: the request body back, with its content type;
    - ``GET /hits``: ``{"hits": n}``, the requests served so far (this one not counted).

    Every request (but ``/hits``) is counted, by path, before it is answered: when a client
    has a response, :meth:`hits` already counts its request.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd = _Server(self)
        self.port: int = self._httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __repr__(self) -> str:
        return f"<LocalServer {self.origin}>"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def hits(self, path: str | None = None) -> int:
        """Requests that reached the server: for ``path``, or all of them."""
        with self._lock:
            return self._counts[path] if path is not None else sum(self._counts.values())

    def count(self, path: str) -> int:
        """Count a request to ``path``; return the requests served before it."""
        with self._lock:
            before = sum(self._counts.values())
            if path != "/hits":
                self._counts[path] += 1
            return before

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, drop the open connections (kept alive by clients), and wait for
        the server's thread."""
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self._thread.join()

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: LocalServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner.opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.owner.closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that hang up mid-answer (truncated bodies do); loud about
        anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    # headers and body go out in two writes: without this, Nagle's algorithm holds the
    # body back until the client's delayed ACK (some 40 ms a request)
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read the counters instead

    def do_GET(self) -> None:
        served = self.server.owner.count(self.path)
        if self.path == "/text":
            self._send(200, TEXT_BODY, "text/plain; charset=utf-8")
        elif self.path == "/json":
            self._send_json(200, {"ok": True})
        elif self.path == "/big":
            self._send(200, BIG_BODY, "application/octet-stream")
        elif self.path == "/chunked":
            self._send_chunked()
        elif self.path == "/hits":
            self._send_json(200, {"hits": served})
        elif self.path.startswith("/orders/") and self.path != "/orders/missing":
            self._send_json(200, {"id": self.path.rsplit("/", 1)[1], "status": "shipped"})
        else:
            self._send_json(404, {"error": f"no {self.path}"})

    def do_POST(self) -> None:
        self.server.owner.count(self.path)
        length = self.headers.get("content-length")
        if length is None:
            self._send_json(411, {"error": "send a Content-Length"})
            return
        body = self.rfile.read(int(length))
        if self.path == "/echo":
            self._send(200, body, self.headers.get("content-type", "application/octet-stream"))
        else:
            self._send_json(404, {"error": f"no {self.path}"})

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(CHUNKS):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def http_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """A real HTTP server for this test (see :class:`LocalServer`), stopped at teardown.
    Proxy variables are cleared, so httpx talks to it directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with LocalServer() as server:
        yield server


@pytest.fixture
def other_http_server(http_server: LocalServer) -> Iterator[LocalServer]:
    """A second server on another port: another origin, for tests that need two."""
    with LocalServer() as server:
        yield server
