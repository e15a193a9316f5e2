"""The ``toxiproxy`` fixture as a user meets it, with real sockets against real servers.

Not collected by the project's own run (its name does not start with ``test_``):
``tests/proxy/test_fixture.py`` copies it into a pytester directory and runs it once per
backend (``--chaos-toxiproxy embedded`` and ``--chaos-toxiproxy binary``), so every check
here holds on the embedded engine and on the real ``toxiproxy-server`` alike.

Before every test, ``server_is_clean`` reads the server's raw state over HTTP and asserts
that it is exactly as the session set it up: no proxy but the session's two, no toxic but
the session's own, every address and ``enabled`` as they were. Tests run in file order, so
each one checks the teardown of the one before it; the last test checks the one before it.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx
import pytest

from pytest_chaos.proxy.client import Proxy, Toxic
from pytest_chaos.proxy.errors import NotFound

IO_TIMEOUT = 10.0
STYLES = ["call", "with"]


# -- upstream servers -----------------------------------------------------------------------


class Server:
    """A threaded TCP server on loopback; ``handler(sock)`` serves each connection."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(IO_TIMEOUT * 3)
        try:
            with sock:
                self.handler(sock)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.listener.close()


def echo_handler(sock: socket.socket) -> None:
    """Echo everything; close when the client does."""
    while data := sock.recv(1 << 16):
        sock.sendall(data)


def greet_handler(sock: socket.socket) -> None:
    """Say hello, then close at once."""
    sock.sendall(b"hello")


@pytest.fixture(scope="session")
def echo() -> Iterator[str]:
    server = Server(echo_handler)
    yield server.address
    server.close()


class CountingEcho(Server):
    """An echo server that reports how many bytes each connection brought it."""

    def __init__(self) -> None:
        self.received: queue.Queue[int] = queue.Queue()
        super().__init__(self._echo)

    def _echo(self, sock: socket.socket) -> None:
        total = 0
        try:
            while data := sock.recv(1 << 16):
                total += len(data)
                sock.sendall(data)
        finally:
            self.received.put(total)

    def next_count(self) -> int:
        return self.received.get(timeout=IO_TIMEOUT)


@pytest.fixture
def counting_echo() -> Iterator[CountingEcho]:
    server = CountingEcho()
    yield server
    server.close()


@pytest.fixture(scope="session")
def greeter() -> Iterator[str]:
    server = Server(greet_handler)
    yield server.address
    server.close()


# -- the session's proxy and the clean-server check -----------------------------------------


@pytest.fixture(scope="session")
def shared(toxiproxy_session: Any, echo: str) -> Proxy:
    """A proxy the whole session shares; tests find it with ``toxiproxy["shared"]``."""
    proxy: Proxy = toxiproxy_session.proxy("shared", upstream=echo)
    return proxy


@pytest.fixture(scope="session")
def seasoned(toxiproxy_session: Any, echo: str) -> Proxy:
    """A session proxy that carries a session toxic of its own."""
    proxy: Proxy = toxiproxy_session.proxy("seasoned", upstream=echo)
    proxy.latency(ms=1, name="base")
    return proxy


def raw_state(url: str) -> dict[str, Any]:
    """``GET /proxies``, read with a plain HTTP client rather than the one under test."""
    response = httpx.get(url + "/proxies", timeout=IO_TIMEOUT)
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


def raw_toxics(url: str, proxy: str) -> list[dict[str, Any]]:
    toxics: list[dict[str, Any]] = raw_state(url)[proxy]["toxics"]
    return toxics


@pytest.fixture(scope="session")
def baseline(toxiproxy_session: Any, shared: Proxy, seasoned: Proxy) -> dict[str, Any]:
    """The server as the session set it up, before any test touched it."""
    state = raw_state(toxiproxy_session.url)
    assert sorted(state) == ["seasoned", "shared"]
    return state


@pytest.fixture(autouse=True)
def server_is_clean(toxiproxy_session: Any, baseline: dict[str, Any]) -> None:
    """At the start of each test: what the previous test created, broke or changed is
    gone, and the session's proxies are as the session made them."""
    assert raw_state(toxiproxy_session.url) == baseline, "left behind by the previous test"


# -- client side ----------------------------------------------------------------------------


def connect(proxy: Proxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> tuple[bytes, int]:
    """``size`` bytes, and how many ``recv`` calls it took."""
    data = bytearray()
    calls = 0
    while len(data) < size:
        piece = sock.recv(size - len(data))
        calls += 1
        assert piece, f"closed after {len(data)} of {size} bytes"
        data += piece
    return bytes(data), calls


def read_to_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything until the connection ends, and how: ``"eof"`` or ``"reset"``."""
    data = bytearray()
    while True:
        try:
            piece = sock.recv(1 << 16)
        except ConnectionResetError:
            return bytes(data), "reset"
        if not piece:
            return bytes(data), "eof"
        data += piece


def read_to_end_after(sock: socket.socket, size: int) -> tuple[bytes, str]:
    """Read up to ``size`` bytes, then half-close so the echo server ends the connection."""
    data = bytearray()
    while len(data) < size:
        try:
            piece = sock.recv(size - len(data))
        except ConnectionResetError:
            return bytes(data), "reset"
        if not piece:
            return bytes(data), "eof"
        data += piece
    sock.shutdown(socket.SHUT_WR)
    rest, how = read_to_end(sock)
    return bytes(data) + rest, how


def round_trip(proxy: Proxy, payload: bytes = b"ping") -> float:
    """Seconds to send ``payload`` through the proxy and read its echo on a new connection."""
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload))[0] == payload
        return time.monotonic() - start


def echo_bulk(proxy: Proxy, size: int) -> tuple[float, int]:
    """Seconds to echo ``size`` bytes, and the ``recv`` calls the echo came back in."""
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    with connect(proxy) as sock:
        start = time.monotonic()
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        data, calls = recv_exactly(sock, size)
        sender.join(IO_TIMEOUT)
        assert data == payload, "the echo came back altered"
        return time.monotonic() - start, calls


def assert_refused(proxy: Proxy) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=IO_TIMEOUT).close()


@contextmanager
def applied(style: str, proxy: Proxy, make: Callable[[], Toxic]) -> Iterator[Toxic]:
    """Apply a toxic as a plain call (left for teardown to remove, which the next test's
    ``server_is_clean`` checks) or as a context manager (removed on exit, checked here)."""
    if style == "call":
        yield make()
        assert len(proxy.toxics()) == 1, "a plain call stays until teardown"
        return
    with make() as toxic:
        yield toxic
    assert raw_toxics(proxy.api.url, proxy.name) == [], "the with block did not remove it"


def assert_toxic(proxy: Proxy, toxic: Toxic, expected: dict[str, Any]) -> None:
    """The server holds exactly ``expected`` (type, stream, toxicity, attributes)."""
    (on_server,) = raw_toxics(proxy.api.url, proxy.name)
    for key, value in expected.items():
        assert on_server[key] == value, (key, on_server)
    assert on_server["name"] == toxic.name
    assert toxic.type == expected["type"]
    assert toxic.attributes == expected["attributes"]


# -- proxies --------------------------------------------------------------------------------


def test_proxy_handle(toxiproxy: Any, echo: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    assert link.host == "127.0.0.1"
    assert 0 < link.port < 65536
    assert link.listen == f"127.0.0.1:{link.port}"
    assert link.upstream == echo
    on_server = raw_state(toxiproxy.url)["echo"]
    assert (on_server["listen"], on_server["upstream"], on_server["enabled"]) == (
        link.listen,
        echo,
        True,
    )
    assert round_trip(link) < IO_TIMEOUT
    again = toxiproxy["echo"]
    assert (again.name, again.listen, again.upstream) == ("echo", link.listen, echo)
    with pytest.raises(NotFound):
        toxiproxy["no-such-proxy"]


def test_existing_proxy_by_name(toxiproxy: Any, shared: Proxy) -> None:
    found = toxiproxy["shared"]
    assert found.listen == shared.listen
    found.latency(ms=300)  # left for teardown: the next test checks it is gone
    assert round_trip(found) >= 0.28
    found.disable()  # likewise: teardown brings it back on the same address
    assert_refused(found)


def test_proxies_made_by_a_test_are_deleted_at_teardown(toxiproxy: Any, echo: str) -> None:
    first = toxiproxy.proxy("first", upstream=echo)
    second = toxiproxy.proxy("second", upstream=echo)
    first.limit_data(bytes=1)
    assert sorted(raw_state(toxiproxy.url)) == ["first", "seasoned", "second", "shared"]
    assert round_trip(second) < IO_TIMEOUT


# -- every toxic helper, as a plain call and as a context manager ---------------------------


@pytest.mark.parametrize("style", STYLES)
def test_latency(toxiproxy: Any, echo: str, style: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    make = partial(link.latency, ms=300, jitter=50, stream="upstream")
    with applied(style, link, make) as toxic:
        assert_toxic(
            link,
            toxic,
            {
                "type": "latency",
                "stream": "upstream",
                "toxicity": 1,
                "attributes": {"latency": 300, "jitter": 50},
            },
        )
        assert round_trip(link) >= 0.24  # 300 ms minus at most 50 ms of jitter
    if style == "with":
        assert round_trip(link) < 0.2


@pytest.mark.parametrize("style", STYLES)
def test_bandwidth(toxiproxy: Any, echo: str, style: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    with applied(style, link, partial(link.bandwidth, kb_per_s=50)) as toxic:
        assert_toxic(link, toxic, {"type": "bandwidth", "attributes": {"rate": 50}})
        elapsed, _ = echo_bulk(link, 25_000)  # 0.5 s at 50 KB/s
        assert elapsed >= 0.35
    if style == "with":
        assert echo_bulk(link, 25_000)[0] < 0.3


@pytest.mark.parametrize("style", STYLES)
def test_slow_close(toxiproxy: Any, greeter: str, style: str) -> None:
    link = toxiproxy.proxy("greeter", upstream=greeter)

    def greeting_then_close() -> float:
        with connect(link) as sock:
            assert recv_exactly(sock, 5)[0] == b"hello"
            start = time.monotonic()
            assert read_to_end(sock) == (b"", "eof")
            return time.monotonic() - start

    with applied(style, link, partial(link.slow_close, ms=400)) as toxic:
        assert_toxic(link, toxic, {"type": "slow_close", "attributes": {"delay": 400}})
        assert greeting_then_close() >= 0.3
    if style == "with":
        assert greeting_then_close() < 0.2


@pytest.mark.parametrize("style", STYLES)
def test_timeout(toxiproxy: Any, echo: str, style: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    with applied(style, link, partial(link.timeout, ms=400, stream="upstream")) as toxic:
        assert_toxic(
            link, toxic, {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 400}}
        )
        with connect(link) as sock:
            start = time.monotonic()
            sock.sendall(b"swallowed")
            data, _ = read_to_end(sock)
            assert data == b"", "a timeout toxic lets no data through"
            assert time.monotonic() - start >= 0.3
    if style == "with":
        assert round_trip(link) < 0.2


@pytest.mark.parametrize("style", STYLES)
def test_reset_peer(toxiproxy: Any, echo: str, style: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    with applied(style, link, partial(link.reset_peer, ms=200)) as toxic:
        assert_toxic(link, toxic, {"type": "reset_peer", "attributes": {"timeout": 200}})
        with connect(link) as sock:
            start = time.monotonic()
            sock.sendall(b"ping")
            with pytest.raises(ConnectionResetError):  # ECONNRESET, not a clean close
                while sock.recv(1024):
                    pass
            assert time.monotonic() - start >= 0.15
    if style == "with":
        assert round_trip(link) < 0.2


@pytest.mark.parametrize("style", STYLES)
def test_slicer(toxiproxy: Any, echo: str, style: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    make = partial(link.slicer, average_size=100, size_variation=20, delay_us=10_000)
    with applied(style, link, make) as toxic:
        assert_toxic(
            link,
            toxic,
            {
                "type": "slicer",
                "attributes": {"average_size": 100, "size_variation": 20, "delay": 10_000},
            },
        )
        elapsed, calls = echo_bulk(link, 3000)  # about 30 slices, 10 ms apart
        assert calls >= 8, f"expected the echo in many small slices, got {calls} reads"
        assert elapsed >= 0.15
    if style == "with":
        assert echo_bulk(link, 3000)[0] < 0.15


@pytest.mark.parametrize("style", STYLES)
def test_limit_data(toxiproxy: Any, echo: str, style: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    with applied(style, link, partial(link.limit_data, bytes=100)) as toxic:
        assert_toxic(link, toxic, {"type": "limit_data", "attributes": {"bytes": 100}})
        with connect(link) as sock:
            sock.sendall(b"a" * 1000)
            data, _ = read_to_end(sock)
            assert data == b"a" * 100
    if style == "with":
        assert echo_bulk(link, 1000)[0] < IO_TIMEOUT


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_stream_chooses_the_direction(
    toxiproxy: Any, counting_echo: CountingEcho, stream: str
) -> None:
    """``limit_data(10, stream=...)`` cuts before the echo server (upstream: it receives 10
    bytes) or after it (downstream: it receives all 50, the client gets 10 back)."""
    link = toxiproxy.proxy("echo", upstream=counting_echo.address)
    with link.limit_data(10, stream=stream) as toxic:
        assert toxic.stream == stream
        assert raw_toxics(toxiproxy.url, "echo")[0]["stream"] == stream
        with connect(link) as sock:
            sock.sendall(b"b" * 50)
            data, _ = read_to_end(sock)
        if stream == "upstream":
            assert counting_echo.next_count() == 10
            assert len(data) <= 10
        else:
            assert counting_echo.next_count() == 50
            assert data == b"b" * 10


@pytest.mark.parametrize("toxicity", [0.0, 1.0])
def test_toxicity_chooses_whether_it_applies(toxiproxy: Any, echo: str, toxicity: float) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    with link.limit_data(0, toxicity=toxicity) as toxic:
        assert toxic.toxicity == toxicity
        assert raw_toxics(toxiproxy.url, "echo")[0]["toxicity"] == toxicity
        for _ in range(5):
            with connect(link) as sock:
                sock.sendall(b"ping")
                data, _ = read_to_end_after(sock, 4)
                assert data == (b"ping" if toxicity == 0 else b"")


# -- down -------------------------------------------------------------------------------------


def test_down_as_a_context_manager(toxiproxy: Any, echo: str) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    with connect(link) as open_before:
        open_before.sendall(b"ping")
        assert recv_exactly(open_before, 4)[0] == b"ping"
        with link.down() as same:
            assert same is link
            assert raw_state(toxiproxy.url)["echo"]["enabled"] is False
            assert_refused(link)
            assert read_to_end(open_before)[0] == b"", "the open connection is cut"
    assert raw_state(toxiproxy.url)["echo"]["enabled"] is True
    assert round_trip(link) < IO_TIMEOUT


def test_down_as_a_plain_call(toxiproxy: Any, echo: str, shared: Proxy) -> None:
    link = toxiproxy.proxy("echo", upstream=echo)
    link.down()
    assert_refused(link)
    link.enable()
    assert round_trip(link) < IO_TIMEOUT
    toxiproxy["shared"].down()  # left down: teardown brings it back (checked next test)
    assert raw_state(toxiproxy.url)["shared"]["enabled"] is False
    assert_refused(shared)


def test_faults_on_the_shared_proxy_are_undone_even_when_nested(
    toxiproxy: Any, shared: Proxy
) -> None:
    link = toxiproxy["shared"]
    link.latency(ms=100, name="plain")
    with link.bandwidth(kb_per_s=1000):
        with link.down():
            assert_refused(link)
        assert sorted(t["name"] for t in raw_toxics(toxiproxy.url, "shared")) == [
            "bandwidth_downstream",
            "plain",
        ]
    assert [t["name"] for t in raw_toxics(toxiproxy.url, "shared")] == ["plain"]
    assert round_trip(link) >= 0.09


def test_changes_to_a_session_proxy_are_put_back(
    toxiproxy: Any, seasoned: Proxy, greeter: str
) -> None:
    found = toxiproxy["seasoned"]
    (base,) = found.toxics()
    base.update(latency=200, toxicity=0.5)
    (changed,) = raw_toxics(toxiproxy.url, "seasoned")
    assert (changed["toxicity"], changed["attributes"]["latency"]) == (0.5, 200)
    base.remove()
    found.update(upstream=greeter)
    with connect(found) as sock:
        assert read_to_end(sock) == (b"hello", "eof")  # it really points at the greeter
    found.update(enabled=False)
    state = raw_state(toxiproxy.url)["seasoned"]
    assert (state["toxics"], state["upstream"], state["enabled"]) == ([], greeter, False)


def test_a_deleted_session_proxy_comes_back(toxiproxy: Any, seasoned: Proxy) -> None:
    toxiproxy["seasoned"].delete()
    assert "seasoned" not in raw_state(toxiproxy.url)
    assert_refused(seasoned)


def test_populate_through_the_fixture(
    toxiproxy: Any, echo: str, greeter: str, shared: Proxy
) -> None:
    made, replaced = toxiproxy.populate(
        [
            {"name": "populated", "upstream": echo, "listen": "127.0.0.1:0"},
            {"name": "shared", "upstream": greeter, "listen": shared.listen},
        ]
    )
    assert (made.name, replaced.name) == ("populated", "shared")
    assert round_trip(made) < IO_TIMEOUT
    assert raw_state(toxiproxy.url)["shared"]["upstream"] == greeter
    made.latency(ms=1)
    # teardown deletes "populated" and puts "shared" back on its echo upstream


def test_the_last_test_finds_a_clean_server() -> None:
    """``server_is_clean`` ran before this: the previous test's teardown worked."""
