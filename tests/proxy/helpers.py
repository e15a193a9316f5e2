"""Real-socket helpers for the proxy tests: upstream servers in threads, a thin client of the
Toxiproxy HTTP API, and blocking socket operations that always have a deadline.

Everything here is bounded: every socket has a timeout, every thread is a daemon that the
owning context manager stops and joins, so a broken proxy fails a test instead of hanging it.
"""

from __future__ import annotations

import hashlib
import http.server
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
import pytest

LOOPBACK = "127.0.0.1"
#: Deadline for any single blocking socket operation that is expected to succeed.
IO_TIMEOUT = 10.0

Closed = Literal["eof", "reset"]
Handler = Callable[[socket.socket], None]


# -- sockets ---------------------------------------------------------------------------------


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def connect(address: str, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A blocking TCP connection to ``host:port`` with ``timeout`` on every operation."""
    sock = socket.create_connection(parse_address(address), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int, timeout: float = IO_TIMEOUT) -> bytes:
    """Read exactly ``size`` bytes; fail on EOF, reset or when ``timeout`` runs out."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while len(buf) < size:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            piece = sock.recv(min(size - len(buf), 1 << 20))
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout} s with {len(buf)} of {size} bytes read"
            ) from None
        if not piece:
            raise AssertionError(f"connection closed after {len(buf)} of {size} bytes")
        buf += piece
    return bytes(buf)


def read_until_closed(sock: socket.socket, timeout: float = IO_TIMEOUT) -> tuple[bytes, Closed]:
    """Read until the peer closes; return the data and how it closed. Fails on a timeout."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            piece = sock.recv(1 << 20)
        except ConnectionResetError:
            return bytes(buf), "reset"
        except TimeoutError:
            raise AssertionError(
                f"connection still open after {timeout} s ({len(buf)} bytes read)"
            ) from None
        if not piece:
            return bytes(buf), "eof"
        buf += piece


def wait_closed(sock: socket.socket, timeout: float = IO_TIMEOUT) -> Closed:
    """Wait until the peer closes a connection that carries no more data."""
    data, how = read_until_closed(sock, timeout)
    assert data == b"", f"expected no data before the close, got {len(data)} bytes"
    return how


def assert_silent(sock: socket.socket, for_s: float) -> None:
    """Assert that nothing arrives and the connection stays open for ``for_s`` seconds."""
    sock.settimeout(for_s)
    try:
        piece = sock.recv(1 << 16)
    except TimeoutError:
        return
    except ConnectionResetError:
        raise AssertionError("connection was reset") from None
    if piece:
        raise AssertionError(f"expected silence, got {len(piece)} bytes: {piece[:64]!r}")
    raise AssertionError("connection was closed")


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """``sendall`` from a daemon thread, for payloads larger than the socket buffers."""
    thread = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    thread.start()
    return thread


def echo_through(sock: socket.socket, payload: bytes, timeout: float = IO_TIMEOUT) -> bytes:
    """Send ``payload`` to an echo server while reading the same number of bytes back."""
    sender = send_in_background(sock, payload)
    try:
        return recv_exactly(sock, len(payload), timeout)
    finally:
        sender.join(timeout)


def exchange(client: socket.socket, server: socket.socket, data: bytes = b"foobar") -> None:
    """Send ``data`` each way between a proxied client and the upstream's socket."""
    client.sendall(data)
    assert recv_exactly(server, len(data)) == data
    server.sendall(data)
    assert recv_exactly(client, len(data)) == data


# -- upstream servers ------------------------------------------------------------------------


class TcpServer:
    """A threaded TCP server on loopback: ``handler(sock)`` runs in one daemon thread per
    accepted connection. Exiting the context closes the listener and every connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.listener = socket.create_server((LOOPBACK, 0), backlog=1024)
        self.address = f"{LOOPBACK}:{self.listener.getsockname()[1]}"
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closing = False
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> TcpServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.settimeout(IO_TIMEOUT)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                if self._closing:
                    sock.close()
                    return
                self.accepted += 1
                self._sockets.append(sock)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.handler(sock)
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            self._closing = True
            sockets, threads = list(self._sockets), list(self._threads)
        _shutdown(self.listener)
        self.listener.close()
        self._acceptor.join(IO_TIMEOUT)
        for sock in sockets:
            _shutdown(sock)
        for thread in threads:
            thread.join(IO_TIMEOUT)
        for sock in sockets:
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def echo_handler(sock: socket.socket) -> None:
    """Echo everything back until the peer closes."""
    sock.settimeout(None)  # the server's close() ends it
    while data := sock.recv(1 << 20):
        sock.sendall(data)


def close_handler(sock: socket.socket) -> None:
    """Accept, then close at once (an upstream that is up but refuses to talk)."""
    sock.close()


@contextmanager
def echo_server() -> Iterator[TcpServer]:
    with TcpServer(echo_handler) as server:
        yield server


class Upstream(TcpServer):
    """An upstream whose accepted sockets the test drives itself, as Toxiproxy's
    ``testhelper.NewUpstream`` does: ``accept()`` hands over the next one."""

    def __init__(self) -> None:
        self._accepted: queue.Queue[socket.socket] = queue.Queue()
        super().__init__(self._accepted.put)

    def accept(self, timeout: float = IO_TIMEOUT) -> socket.socket:
        try:
            return self._accepted.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no connection reached the upstream in {timeout} s") from None

    def __enter__(self) -> Upstream:
        super().__enter__()
        return self


@dataclass
class SinkResult:
    bytes: int = 0
    sha256: str = ""
    done: threading.Event = field(default_factory=threading.Event)


class HashSink(TcpServer):
    """Reads each connection to its end, counting bytes and hashing them with sha256."""

    def __init__(self) -> None:
        self.results: queue.Queue[SinkResult] = queue.Queue()
        super().__init__(self._consume)

    def _consume(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        digest = hashlib.sha256()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        total = 0
        while size := sock.recv_into(buf):
            digest.update(view[:size])
            total += size
        self.results.put(SinkResult(total, digest.hexdigest()))

    def result(self, timeout: float) -> SinkResult:
        try:
            return self.results.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the sink saw no end of stream in {timeout} s") from None

    def __enter__(self) -> HashSink:
        super().__enter__()
        return self


def closed_port() -> str:
    """An address where nothing listens (bound, then closed, so it is free and refuses)."""
    with socket.create_server((LOOPBACK, 0)) as sock:
        return f"{LOOPBACK}:{sock.getsockname()[1]}"


# -- the Toxiproxy API -----------------------------------------------------------------------


class Api:
    """The few Toxiproxy API calls the tests make, asserting each one succeeds."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code == status, (
            f"{method} {path} {body!r}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def create_proxy(self, upstream: str, name: str = "test") -> Proxy:
        listen = f"{LOOPBACK}:0"
        info = self.call("POST", "/proxies", _proxy(name, listen, upstream), status=201)
        return Proxy(self, name, info["listen"])

    def reset(self) -> None:
        self.call("POST", "/reset", status=204)


def _proxy(name: str, listen: str, upstream: str) -> dict[str, Any]:
    return {"name": name, "listen": listen, "upstream": upstream, "enabled": True}


@dataclass
class Proxy:
    api: Api
    name: str
    listen: str

    @property
    def path(self) -> str:
        return f"/proxies/{self.name}"

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.api.call("GET", self.path)
        return info

    def set_enabled(self, enabled: bool) -> dict[str, Any]:
        info: dict[str, Any] = self.api.call("POST", self.path, {"enabled": enabled})
        return info

    def add_toxic(
        self,
        type_: str,
        stream: str = "downstream",
        *,
        name: str | None = None,
        toxicity: float = 1.0,
        **attributes: int,
    ) -> str:
        body = {
            "name": name or f"{type_}_{stream}",
            "type": type_,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        toxic = self.api.call("POST", f"{self.path}/toxics", body)
        assert toxic["name"] == body["name"]
        return str(toxic["name"])

    def update_toxic(self, name: str, toxicity: float | None = None, **attributes: int) -> None:
        body: dict[str, Any] = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        self.api.call("POST", f"{self.path}/toxics/{name}", body)

    def remove_toxic(self, name: str) -> None:
        self.api.call("DELETE", f"{self.path}/toxics/{name}", status=204)

    def toxics(self) -> list[dict[str, Any]]:
        toxics: list[dict[str, Any]] = self.api.call("GET", f"{self.path}/toxics")
        return toxics

    def connect(self, timeout: float = IO_TIMEOUT) -> socket.socket:
        return connect(self.listen, timeout)


# -- threads -------------------------------------------------------------------------------


class Background:
    """``target(stop)`` running in a daemon thread; ``stop`` is set when the context exits,
    which then joins the thread and re-raises whatever it raised."""

    def __init__(self, target: Callable[[threading.Event], None]) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self._target(self.stop)
        except BaseException as error:  # handed to the test's thread on exit
            self.error = error

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.join()

    def join(self, timeout: float = IO_TIMEOUT) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"background thread still running after {timeout} s")
        if self.error is not None:
            raise self.error


def in_background(target: Callable[[threading.Event], None]) -> Background:
    return Background(target)


# -- timing ----------------------------------------------------------------------------------


class Stopwatch:
    """Seconds since creation (or the last ``restart``), on the monotonic clock."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def restart(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


class TooLate(AssertionError):
    """A timing came later than allowed. A busy machine's scheduler can do that to a timer
    that fired on time, so a fresh measurement may be taken; nothing can make one early."""


def assert_duration(what: str, actual: float, expected: float, early: float, late: float) -> None:
    """``actual`` is in ``[expected - early, expected + late]`` seconds: AssertionError when
    it is early, TooLate when it is late."""
    low, high = expected - early, expected + late
    shown = (
        f"{what}: took {actual * 1000:.1f} ms, expected {expected * 1000:.0f} ms "
        f"(allowed {low * 1000:.0f}..{high * 1000:.0f} ms)"
    )
    assert low <= actual, shown
    if actual > high:
        raise TooLate(shown)


T = TypeVar("T")


def on_time(measure: Callable[[], T], attempts: int = 3) -> T:
    """``measure()`` (which measures and asserts its durations) again after a TooLate, up
    to ``attempts`` times in all: the fastest of a few measurements is the one the
    scheduler delayed least. Every other failure, and the last TooLate, propagate."""
    for attempt in range(1, attempts + 1):
        try:
            return measure()
        except TooLate:
            if attempt == attempts:
                raise
    raise AssertionError("attempts must be 1 or more")


def assert_fixture_suite_passed(result: pytest.RunResult, backend: str) -> int:
    """The inner fixture suite ran on ``backend`` (the header says so) and every one of its
    tests, 25 at least, passed; returns how many ran."""
    out = result.stdout.str()
    assert re.search(rf"^chaos: seed=\d+ toxiproxy={re.escape(backend)}$", out, re.M), out
    collected = re.search(r"collected (\d+) items", out)
    assert collected, out
    total = int(collected.group(1))
    assert total >= 25, out
    result.assert_outcomes(passed=total)
    return total


@contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on loopback answering with ``handler``; yields ``host:port``."""
    served = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    threading.Thread(target=served.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield f"{LOOPBACK}:{served.server_address[1]}"
    finally:
        served.shutdown()
        served.server_close()
