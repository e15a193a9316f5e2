"""The API server sheds bad clients: framing garbage is answered 400 at once, a request
head has a deadline, and connections past the cap get a clear 503. Where Toxiproxy behaves
the same, the test runs against both servers (``api_server``)."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator

import pytest

from pytest_chaos._net.connection import READ_TIMEOUT
from pytest_chaos.proxy.backends import embedded_argv

from ..servers import ApiServer, free_port, start_logged_server, stop_server
from .helpers import LOOPBACK, read_until_closed

#: Well inside the API's read deadline (15 s on both servers): an answer that comes before
#: it was given for the garbage, not for the deadline.
PROMPT = READ_TIMEOUT * 2 / 3


def _port(server: ApiServer) -> int:
    return int(server.url.rpartition(":")[2])


def answer_to(server: ApiServer, data: bytes) -> bytes:
    """Send ``data`` and keep the connection open; return what the server answers."""
    with socket.create_connection((LOOPBACK, _port(server)), timeout=PROMPT) as sock:
        sock.sendall(data)
        try:
            return sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no answer within {PROMPT} s to {data!r}") from None


@pytest.mark.parametrize(
    "garbage",
    [
        b"GARBAGE\r\n",
        b"GET /version\r\n",
        b"GET /version HTTP/1.1\r\nHost: x\r\nbad header line\r\n",
    ],
    ids=["request-line", "no-version", "header-line"],
)
def test_garbage_without_a_blank_line_is_answered_400_at_once(
    api_server: ApiServer, garbage: bytes
) -> None:
    assert answer_to(api_server, garbage).startswith(b"HTTP/1.1 400 ")


def test_a_chunk_size_past_64_bits_is_answered_400_at_once(api_server: ApiServer) -> None:
    head = b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = answer_to(api_server, head + b"1000000000000000000\r\n")  # 2**72
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(
        b'{"error":"bad request body: http chunk length too large","status":400}\n'
    )


def test_a_chunk_past_the_body_limit_is_answered_413_at_once(server: ApiServer) -> None:
    """Toxiproxy waits for the megabytes announced; the embedded server knows it would
    refuse them and says so before they are sent."""
    head = b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = answer_to(server, head + b"4\r\nabcd\r\n" + b"200000\r\n")  # 4 B, then 2 MiB
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"the limit is 1048576 bytes" in answer


def test_a_valid_head_in_pieces_is_still_served(server: ApiServer) -> None:
    """The early checks judge complete lines only: a head sent a byte at a time passes."""
    request = b"GET /version HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n"
    with socket.create_connection((LOOPBACK, _port(server)), timeout=10) as sock:
        for byte in request:
            sock.sendall(bytes([byte]))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_clients_dripping_a_request_head_are_all_closed(api_server: ApiServer) -> None:
    """500 clients each send a byte of a never-ending head every half second; the server
    closes every one of them at its read deadline, whatever the drip."""
    budget = READ_TIMEOUT * 3  # generous: what is asserted is that they are all closed
    prefix = b"GET /version HTTP/1.1\r\nHost: x\r\nX-Drip: "
    selector = selectors.DefaultSelector()
    open_ = set()
    for _ in range(500):
        sock = socket.create_connection((LOOPBACK, _port(api_server)), timeout=10)
        sock.sendall(prefix)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        open_.add(sock)
    deadline = time.monotonic() + budget
    try:
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj  # type: ignore[assignment]
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:  # closed by the server (a 408 or any answer is read first)
                    selector.unregister(sock)
                    open_.discard(sock)
                    sock.close()
            for sock in list(open_):
                try:
                    sock.send(b"a")
                except (BlockingIOError, ConnectionError):
                    pass
        assert not open_, f"{len(open_)} of 500 dripping clients still open after {budget} s"
    finally:
        for sock in open_:
            sock.close()
        selector.close()


@pytest.fixture
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    port = free_port()
    argv = [*embedded_argv(port, seed=1), "--max-connections", "4"]
    log = tmp_path_factory.mktemp("small-server") / "server.log"
    server = start_logged_server("embedded", argv, port, log)
    yield server
    stop_server(server)


def test_connections_past_the_cap_get_a_clear_503(small_server: ApiServer) -> None:
    port = _port(small_server)
    held = []  # type: ignore[var-annotated]
    try:
        # the start-up poll's connection may still be closing: fill up to the cap
        while len(held) < 4:
            sock = socket.create_connection((LOOPBACK, port), timeout=10)
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")  # served, kept alive
            held.append(sock)
        with socket.create_connection((LOOPBACK, port), timeout=10) as extra:
            extra.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            answer, _ = read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b"too many API connections: the limit is 4" in answer
        assert b"Retry-After: 1" in answer
        held.pop().close()
        with socket.create_connection((LOOPBACK, port), timeout=10) as again:
            again.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer, _ = read_until_closed(again)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
    finally:
        for sock in held:
            sock.close()
