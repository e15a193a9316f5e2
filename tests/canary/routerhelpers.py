"""Real upstreams for the router tests: HTTP and TCP servers on 127.0.0.1 that say who they
are, in threads of the test process.

:class:`NamedHttpServer` (HTTP/1.1, keep-alive) answers its name on any path but these:

- ``/echo``: the request body back (Content-Length or chunked in; Content-Length out);
- ``/big?n=N``: N bytes of :func:`pattern`, chunked, in 64 KiB pieces;
- ``/status/N``: status N, its name as the body;
- ``/slow?ms=N``: its name after N milliseconds;
- ``/hang``: nothing until the server stops;
- ``/close``: closes the connection without an answer;
- ``/bye``: answers its name, then closes the connection without having said it would
  (as a server whose idle timeout fires just then).

Every answer carries ``X-Server: <name>``. :meth:`NamedHttpServer.stop` is a hard stop, as
a killed instance: the listener and every open connection close at once, so a router that
still sends requests to a stopped instance makes them fail.

:class:`NamedTcpServer` writes ``<name>\\n`` to each client, then echoes what it receives
until the client half-closes.
"""

from __future__ import annotations

import hashlib
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
IO_TIMEOUT = 10.0
_N = TypeVar("_N", bound="_Named")


def pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike, the same every time."""
    block = hashlib.sha256(b"router").digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def closed_port() -> str:
    """``127.0.0.1:port`` where nothing listens (a port that was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return f"{LOOPBACK}:{sock.getsockname()[1]}"


class _Tracked:
    """Open connections of a threaded server, to close them all on a hard stop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.connections = 0
        self.requests = 0
        self.stopped = threading.Event()

    def opened(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.add(sock)
            self.connections += 1

    def closed(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.discard(sock)

    def close_all(self) -> None:
        self.stopped.set()
        with self.lock:
            socks = list(self.open)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go in two writes
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.tracked.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.tracked.closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []  # type: ignore[var-annotated]
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self) -> None:
        tracked = self.server.tracked
        with tracked.lock:
            tracked.requests += 1
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        body = self._body()
        name = self.server.name.encode()
        if parts.path == "/echo":
            self._reply(200, body)
        elif parts.path == "/big":
            self._big(int(query["n"][0]))
        elif parts.path.startswith("/status/"):
            self._reply(int(parts.path.rsplit("/", 1)[1]), name)
        elif parts.path == "/slow":
            time.sleep(int(query["ms"][0]) / 1000)
            self._reply(200, name)
        elif parts.path == "/hang":
            tracked.stopped.wait(IO_TIMEOUT * 3)
            self.close_connection = True
        elif parts.path == "/close":
            self.close_connection = True
        elif parts.path == "/bye":
            self._reply(200, name)
            self.close_connection = True
        else:
            self._reply(200, name)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("X-Server", self.server.name)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _big(self, size: int) -> None:
        self.send_response(200)
        self.send_header("X-Server", self.server.name)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        data = pattern(size)
        for start in range(0, size, 1 << 16):
            piece = data[start : start + (1 << 16)]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.name = name
        self.tracked = _Tracked()


class _Named:
    """A threaded server called ``name`` on a free loopback port; a context manager whose
    exit is a hard stop: the listener and every open connection close at once."""

    def __init__(self, server: _HttpServer | _TcpServer) -> None:
        self.name = server.name
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.address = f"{LOOPBACK}:{server.server_address[1]}"
        self._stopped = False

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._server.tracked.lock:
            return self._server.tracked.connections

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._server.tracked.close_all()
        self._thread.join(IO_TIMEOUT)

    def __enter__(self: _N) -> _N:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NamedHttpServer(_Named):
    """An HTTP/1.1 server that answers its ``name``."""

    def __init__(self, name: str) -> None:
        super().__init__(_HttpServer(name))

    @property
    def requests(self) -> int:
        with self._server.tracked.lock:
            return self._server.tracked.requests


class _EchoHandler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        self.server.tracked.opened(sock)
        try:
            sock.settimeout(IO_TIMEOUT)
            sock.sendall(self.server.name.encode() + b"\n")
            while data := sock.recv(1 << 16):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self.server.tracked.closed(sock)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str) -> None:
        super().__init__((LOOPBACK, 0), _EchoHandler)
        self.name = name
        self.tracked = _Tracked()


class NamedTcpServer(_Named):
    """A TCP server that greets each client with ``name`` and a newline, then echoes."""

    def __init__(self, name: str) -> None:
        super().__init__(_TcpServer(name))


def tcp_exchange(address: str, payload: bytes) -> tuple[str, bytes]:
    """Connect, read the greeting, send ``payload`` and half-close, read the echo to EOF:
    the server's name and what came back."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=IO_TIMEOUT) as sock:
        sender = threading.Thread(target=_send_then_half_close, args=(sock, payload))
        sender.start()
        received = bytearray()
        while data := sock.recv(1 << 16):
            received += data
        sender.join(IO_TIMEOUT)
    name, _, echo = bytes(received).partition(b"\n")
    return name.decode(), echo


def _send_then_half_close(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
