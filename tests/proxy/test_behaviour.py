"""Behaviour of the proxy and of every toxic, observed through real sockets.

Each test runs twice through the ``api_server`` fixture: against the embedded server
(``python -m pytest_chaos.proxy``) and against the real Go ``toxiproxy-server``, talking
only HTTP to the API, so both go down the same code path. The cases and timing tolerances
follow Toxiproxy's own suite (``toxics/*_test.go``, ``proxy_test.go``); where a bound is
wider than Toxiproxy's, it is because the client here is Python on a 2-core machine.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from ..servers import ApiServer
from .helpers import (
    Api,
    Proxy,
    Stopwatch,
    TcpServer,
    Upstream,
    assert_duration,
    assert_silent,
    close_handler,
    closed_port,
    echo_server,
    echo_through,
    exchange,
    in_background,
    on_time,
    read_until_closed,
    recv_exactly,
    send_in_background,
    wait_closed,
)

#: A timer may fire this much earlier than asked, as measured from the client side.
EARLY = 0.005
#: ... and this much later: Toxiproxy allows 10 ms; 25 leaves room for a 2-core machine. A
#: busier machine can delay a timer that fired on time by more: such a timing is measured
#: again (``on_time``), and the fastest of three must be within the bound.
LATE = 0.025
#: Data a toxic must not hold back arrives within this, which tells "not delayed" from
#: the 300 ms delays of the tests that check it, on a machine busy with other work too.
NOT_HELD = 0.150

Pair = tuple[socket.socket, socket.socket]  # a proxied client's socket and the upstream's

MESSAGE = b"hello world " + b"a" * 32 * 1024 + b"\n"  # Toxiproxy's latency test message


@pytest.fixture
def api(api_server: ApiServer) -> Iterator[Api]:
    with api_server.client() as http:
        yield Api(http)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def proxy(api: Api, upstream: Upstream) -> Proxy:
    return api.create_proxy(upstream.address)


@pytest.fixture
def pair(proxy: Proxy, upstream: Upstream) -> Iterator[Pair]:
    """An established connection through the proxy: the client's socket and the upstream's,
    checked to carry data both ways (Toxiproxy's ``WithEstablishedProxy``)."""
    client = proxy.connect()
    server = upstream.accept()
    with client, server:
        exchange(client, server)
        yield client, server


@pytest.fixture
def echo_proxy(api: Api) -> Iterator[Proxy]:
    with echo_server() as server:
        yield api.create_proxy(server.address)


# -- plain proxying -----------------------------------------------------------------------------


def test_simple_message(pair: Pair) -> None:
    exchange(*pair, b"hello world")


def test_two_part_message_arrives_whole(pair: Pair) -> None:
    client, server = pair
    client.sendall(b"hello world")
    client.sendall(b"hello world")
    assert recv_exactly(server, 22) == b"hello worldhello world"


@pytest.mark.parametrize("size", [64 * 1024, 4 * 1024 * 1024])
def test_large_message_echoes_intact(echo_proxy: Proxy, size: int) -> None:
    payload = os.urandom(size)
    with echo_proxy.connect() as client:
        assert echo_through(client, payload) == payload


def test_many_small_messages_keep_order(echo_proxy: Proxy) -> None:
    with echo_proxy.connect() as client:
        for index in range(200):
            line = b"message %d\n" % index
            client.sendall(line)
            assert recv_exactly(client, len(line)) == line


def test_client_close_reaches_upstream(pair: Pair) -> None:
    client, server = pair
    client.sendall(b"last words")
    client.close()
    assert read_until_closed(server) == (b"last words", "eof")


def test_upstream_close_reaches_client(pair: Pair) -> None:
    client, server = pair
    server.sendall(b"goodbye")
    server.close()
    assert read_until_closed(client) == (b"goodbye", "eof")


def test_upstream_down_closes_client(api: Api) -> None:
    """Nothing listens upstream: the proxy accepts the client, then closes it."""
    proxy = api.create_proxy(closed_port())
    with proxy.connect() as client:
        client.sendall(b"anyone there?")
        wait_closed(client, timeout=5)


def test_upstream_that_hangs_up_closes_client(api: Api) -> None:
    with TcpServer(close_handler) as server:
        proxy = api.create_proxy(server.address)
        with proxy.connect() as client:
            _, how = read_until_closed(client, timeout=5)
            assert how in ("eof", "reset")
        assert server.accepted == 1


# -- toxics under traffic -------------------------------------------------------------------------


def test_noop_toxics_pass_data_and_can_be_removed(proxy: Proxy, pair: Pair) -> None:
    """Toxiproxy's TestPersistentConnections."""
    proxy.add_toxic("noop", "upstream")
    proxy.add_toxic("noop", "downstream")
    exchange(*pair, b"hello world\n")
    proxy.remove_toxic("noop_upstream")
    exchange(*pair, b"hello world\n")
    proxy.remove_toxic("noop_downstream")
    exchange(*pair, b"hello world\n")


def test_echo_while_noop_toxics_toggle(proxy: Proxy, pair: Pair) -> None:
    """Toxiproxy's TestToxicAddRemove: a thread adds and removes toxics while data flows."""
    proxy.add_toxic("noop", "downstream")

    def toggle(stop: threading.Event) -> None:
        while not stop.is_set():
            proxy.add_toxic("noop", "upstream")
            proxy.remove_toxic("noop_downstream")
            proxy.remove_toxic("noop_upstream")
            proxy.add_toxic("noop", "downstream")

    with in_background(toggle):
        for index in range(100):
            exchange(*pair, b"hello world %d\n" % index)


#: Toxiproxy 2.12 deadlocks (the DELETE never answers, the link stalls) when a latency toxic
#: is removed under traffic while a bandwidth or slicer toxic follows it in the chain; seen
#: here every time, and reported upstream in similar forms (Shopify/toxiproxy#412, #558).
REAL_REMOVE_DEADLOCK = "real Toxiproxy deadlocks removing latency ahead of bandwidth/slicer"


@pytest.mark.parametrize("latency_position", ["last", "first"])
def test_churning_toxics_drop_and_reorder_nothing(
    api_server: ApiServer, echo_proxy: Proxy, latency_position: str
) -> None:
    """Sequence-numbered messages stream through an echo server while a thread adds,
    updates and removes latency, bandwidth, slicer and noop toxics on both streams: every
    sequence number comes back exactly once, in order."""
    if api_server.kind == "real" and latency_position == "first":
        pytest.xfail(REAL_REMOVE_DEADLOCK)
    received: list[int] = []
    sent = 0
    client = echo_proxy.connect()

    def send(stop: threading.Event) -> None:
        nonlocal sent
        rng = random.Random(7)
        while not stop.is_set():
            lines = (b"%08d:%s\n" % (sent + i, b"x" * rng.randrange(300)) for i in range(10))
            client.sendall(b"".join(lines))
            sent += 10
        client.sendall(b"end\n")

    def receive(_: threading.Event) -> None:
        pending = b""
        while True:
            piece = client.recv(1 << 16)
            assert piece, f"connection closed after {len(received)} lines"
            *lines, pending = (pending + piece).split(b"\n")
            for line in lines:
                if line == b"end":
                    return
                received.append(int(line[:8]))

    try:
        with client, in_background(receive) as receiver:
            with in_background(send):
                churn(echo_proxy, rounds=15, latency_first=latency_position == "first")
            receiver.join(timeout=30)
    except httpx.TimeoutException:
        if api_server.kind != "real":
            raise
        # seen with latency last too, on a machine kept busy: removals and traffic interleave
        pytest.xfail(REAL_REMOVE_DEADLOCK)
    assert sent > 0
    assert received == list(range(sent))


def churn(proxy: Proxy, rounds: int, latency_first: bool) -> None:
    """Add one toxic of each streaming kind to both streams, update some, remove them all in
    a shuffled order; ``rounds`` times."""
    rng = random.Random(11)
    kinds: dict[str, dict[str, int]] = {
        "bandwidth": {"rate": 2000},
        "slicer": {"average_size": 64, "size_variation": 32, "delay": 20},
        "noop": {},
    }
    latency = {"latency": 2, "jitter": 1}
    kinds = {"latency": latency, **kinds} if latency_first else {**kinds, "latency": latency}
    streams = ("upstream", "downstream")
    for _ in range(rounds):
        for stream in streams:
            for kind, attributes in kinds.items():
                proxy.add_toxic(kind, stream, **attributes)  # type: ignore[arg-type]  # a wrong type on purpose
        for stream in streams:
            proxy.update_toxic(f"latency_{stream}", latency=rng.randrange(5))
            proxy.update_toxic(f"bandwidth_{stream}", rate=rng.randrange(500, 5000))
            # size_variation must stay below average_size: real Toxiproxy panics otherwise
            proxy.update_toxic(f"slicer_{stream}", average_size=rng.randrange(33, 128))
        names = [f"{kind}_{stream}" for kind in kinds for stream in streams]
        rng.shuffle(names)
        for name in names:
            proxy.remove_toxic(name)


def test_latency_toxic_close_race(echo_proxy: Proxy) -> None:
    """Toxiproxy's TestLatencyToxicCloseRace: add, connect, write, close, remove; repeatedly."""
    for _ in range(50):
        echo_proxy.add_toxic("latency", "upstream", name="latency", latency=10)
        with echo_proxy.connect() as client:
            client.sendall(b"hello")
        echo_proxy.remove_toxic("latency")
    with echo_proxy.connect() as client:
        assert echo_through(client, b"still alive") == b"still alive"


# -- latency ------------------------------------------------------------------------------------


def timed_exchange(
    client: socket.socket, server: socket.socket, message: bytes = MESSAGE
) -> tuple[float, float]:
    """Send ``message`` from client to server, then back; the seconds each way took."""
    clock = Stopwatch()
    client.sendall(message)
    assert recv_exactly(server, len(message)) == message
    upstream = clock()
    clock.restart()
    server.sendall(message)
    assert recv_exactly(client, len(message)) == message
    return upstream, clock()


@pytest.mark.parametrize(
    ("up_ms", "down_ms"),
    [(100, None), (None, 100), (100, 100), (300, 50), (50, 300), (0, 0)],
    ids=["upstream", "downstream", "even", "bias-up", "bias-down", "zero"],
)
def test_latency(
    proxy: Proxy,
    pair: Pair,
    up_ms: int | None,
    down_ms: int | None,
) -> None:
    """Toxiproxy's DoLatencyTest: each direction is delayed by its own toxic only."""
    for stream, latency in (("upstream", up_ms), ("downstream", down_ms)):
        if latency is not None:
            proxy.add_toxic("latency", stream, latency=latency)

    def exchange_on_time() -> None:
        up, down = timed_exchange(*pair)
        assert_duration("upstream", up, (up_ms or 0) / 1000, EARLY, LATE)
        assert_duration("downstream", down, (down_ms or 0) / 1000, EARLY, LATE)

    on_time(exchange_on_time)


def test_latency_jitter_stays_within_bounds(proxy: Proxy, pair: Pair) -> None:
    proxy.add_toxic("latency", "upstream", latency=60, jitter=40)

    def sample(i: int) -> float:
        def one() -> float:
            took = timed_exchange(*pair, b"ping %d" % i)[0]
            assert_duration("jittered latency", took, 0.060, 0.040 + EARLY, 0.040 + LATE)
            return took

        return on_time(one)

    samples = [sample(i) for i in range(20)]
    assert max(samples) - min(samples) > 0.020, f"no jitter in {samples}"


def test_chained_latencies_add_up(proxy: Proxy, pair: Pair) -> None:
    """Toxiproxy's TestTwoLatencyToxics."""
    proxy.add_toxic("latency", "upstream", name="latency_0", latency=150)
    proxy.add_toxic("latency", "upstream", name="latency_1", latency=150)

    def exchange_on_time() -> None:
        up, down = timed_exchange(*pair)
        assert_duration("two upstream latencies", up, 0.300, EARLY, LATE)
        assert_duration("downstream", down, 0, EARLY, LATE)

    on_time(exchange_on_time)


def test_latency_pipelines_instead_of_stalling_each_chunk(proxy: Proxy, upstream: Upstream) -> None:
    """Toxiproxy's TestLatencyToxicBandwidth: under a steady stream, 100 ms of latency delays
    the data but does not limit its rate (each chunk waits from when it was read)."""
    total = 12 * 1024 * 1024
    proxy.add_toxic("latency", "downstream", latency=100)
    with proxy.connect() as client, upstream.accept() as server:
        sender = send_in_background(server, b"hello world " * (total // 12))
        clock = Stopwatch()
        recv_exactly(client, total, timeout=30)
        elapsed = clock()
        sender.join(10)
    assert elapsed < 2.0, f"12 MiB took {elapsed:.2f} s behind a 100 ms latency"


# -- bandwidth ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_bandwidth_rate(proxy: Proxy, pair: Pair, stream: str) -> None:
    """Toxiproxy's TestBandwidthToxic: 480 KB at 1000 KB/s take 480 ms."""
    proxy.add_toxic("bandwidth", stream, rate=1000)
    client, server = pair
    source, sink = (client, server) if stream == "upstream" else (server, client)
    payload = b"hello world " * 40000

    def send_on_time() -> None:
        clock = Stopwatch()
        sender = send_in_background(source, payload)
        assert recv_exactly(sink, len(payload)) == payload
        elapsed = clock()
        sender.join(10)
        assert_duration("480 KB at 1000 KB/s", elapsed, 0.480, 0.480 * 0.03, 0.480 * 0.05)

    on_time(send_on_time)


def test_bandwidth_leaves_other_stream_alone(proxy: Proxy, pair: Pair) -> None:
    proxy.add_toxic("bandwidth", "upstream", rate=1)
    client, server = pair
    clock = Stopwatch()
    server.sendall(MESSAGE)
    assert recv_exactly(client, len(MESSAGE)) == MESSAGE
    assert clock() < NOT_HELD


# -- slow_close ---------------------------------------------------------------------------------


def fresh_pair(proxy: Proxy, upstream: Upstream) -> Pair:
    """A new connection through the proxy, for a measurement that uses one up."""
    client = proxy.connect()
    return client, upstream.accept()


def test_slow_close_delays_close_not_data(proxy: Proxy, upstream: Upstream) -> None:
    proxy.add_toxic("slow_close", "downstream", delay=300)

    def close_on_time() -> None:
        client, server = fresh_pair(proxy, upstream)
        with client, server:
            server.sendall(b"goodbye")
            server.shutdown(socket.SHUT_RDWR)
            clock = Stopwatch()
            assert recv_exactly(client, 7) == b"goodbye"
            assert clock() < NOT_HELD, "slow_close held back data"
            assert wait_closed(client) == "eof"
            assert_duration("slow close", clock(), 0.300, EARLY, LATE)

    on_time(close_on_time)


def test_slow_close_upstream(proxy: Proxy, upstream: Upstream) -> None:
    proxy.add_toxic("slow_close", "upstream", delay=300)

    def close_on_time() -> None:
        client, server = fresh_pair(proxy, upstream)
        with client, server:
            client.sendall(b"goodbye")
            client.shutdown(socket.SHUT_WR)
            clock = Stopwatch()
            assert recv_exactly(server, 7) == b"goodbye"
            assert wait_closed(server) == "eof"
            assert_duration("slow close", clock(), 0.300, EARLY, LATE)

    on_time(close_on_time)


# -- timeout ------------------------------------------------------------------------------------


def test_timeout_drops_data_then_closes(proxy: Proxy, upstream: Upstream) -> None:
    proxy.add_toxic("timeout", "upstream", timeout=300)

    def timeout_on_time() -> None:
        client, server = fresh_pair(proxy, upstream)
        with client, server:
            client.sendall(b"dropped")
            clock = Stopwatch()
            assert wait_closed(server) == "eof"  # nothing arrives first
            elapsed = clock()
            _, how = read_until_closed(client)
            assert how in ("eof", "reset")
            assert_duration("timeout", elapsed, 0.300, EARLY, LATE)

    on_time(timeout_on_time)


def test_timeout_zero_never_closes_until_removed(proxy: Proxy, pair: Pair) -> None:
    """Toxiproxy's TestTimeoutToxicClosesConnectionOnRemove, after checking it holds."""
    proxy.add_toxic("timeout", "upstream", timeout=0)
    client, server = pair
    client.sendall(b"dropped")
    assert_silent(server, 0.5)
    assert_silent(client, 0.05)
    proxy.remove_toxic("timeout_upstream")
    assert wait_closed(client, timeout=1) == "eof"
    assert wait_closed(server, timeout=1) == "eof"


def test_timeout_behind_latency_does_not_hang_removal(proxy: Proxy, pair: Pair) -> None:
    """Toxiproxy's TestTimeoutToxicDoesNotCauseHang."""
    proxy.add_toxic("latency", "upstream", name="might_block", latency=10)
    proxy.add_toxic("timeout", "upstream", name="timeout", timeout=0)
    client, server = pair
    for _ in range(5):
        client.sendall(b"hello")
    assert_silent(server, 0.2)
    clock = Stopwatch()
    proxy.remove_toxic("might_block")
    assert clock() < 1.0


# -- reset_peer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "timeout_ms"), [("upstream", 0), ("upstream", 100), ("downstream", 100)]
)
def test_reset_peer(echo_proxy: Proxy, stream: str, timeout_ms: int) -> None:
    """Toxiproxy's TestResetToxic*: data triggers a TCP RST ``timeout`` ms later."""
    echo_proxy.add_toxic("reset_peer", stream, timeout=timeout_ms)

    def reset_on_time() -> None:
        with echo_proxy.connect() as client:
            client.sendall(b"reset toxic payload\n")
            clock = Stopwatch()
            data, how = read_until_closed(client)
            elapsed = clock()
        assert (data, how) == (b"", "reset")
        assert_duration("reset", elapsed, timeout_ms / 1000, EARLY, LATE)

    on_time(reset_on_time)


# -- slicer -------------------------------------------------------------------------------------


def test_slicer_delivers_intact_in_pieces(proxy: Proxy, pair: Pair) -> None:
    proxy.add_toxic("slicer", "upstream", average_size=100, size_variation=50, delay=20_000)
    client, server = pair
    payload = bytes(range(256)) * 8  # 2048 bytes: about 20 slices, 20 ms apart
    client.sendall(payload)
    pieces = []  # type: ignore[var-annotated]
    while sum(map(len, pieces)) < len(payload):  # type: ignore[arg-type]  # a wrong type on purpose
        pieces.append(server.recv(len(payload)))
        assert pieces[-1], "connection closed"
    assert b"".join(pieces) == payload
    assert len(pieces) >= 8, f"only {len(pieces)} pieces: {[len(p) for p in pieces]}"
    assert max(map(len, pieces)) <= 150 * 2, [len(p) for p in pieces]


# -- limit_data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_limit_data_passes_exact_count_then_closes(proxy: Proxy, pair: Pair, stream: str) -> None:
    """6 bytes already passed (the fixture's exchange) do not count: the toxic counts from
    when it was added."""
    proxy.add_toxic("limit_data", stream, bytes=100)
    client, server = pair
    source, sink = (client, server) if stream == "upstream" else (server, client)
    payload = os.urandom(150)
    source.sendall(payload)
    assert read_until_closed(sink) == (payload[:100], "eof")


def test_limit_data_zero_closes_on_first_data(proxy: Proxy, pair: Pair) -> None:
    proxy.add_toxic("limit_data", "upstream", bytes=0)
    client, server = pair
    client.sendall(b"x" * 10)
    assert read_until_closed(server) == (b"", "eof")


def test_limit_data_larger_than_data_keeps_connection(proxy: Proxy, pair: Pair) -> None:
    proxy.add_toxic("limit_data", "upstream", bytes=1000)
    client, server = pair
    exchange(client, server, b"y" * 999)
    assert_silent(server, 0.2)
    assert_silent(client, 0.01)


def test_limit_data_hit_exactly_at_chunk_boundary(proxy: Proxy, pair: Pair) -> None:
    proxy.add_toxic("limit_data", "upstream", bytes=100)
    client, server = pair
    client.sendall(b"a" * 50)
    assert recv_exactly(server, 50) == b"a" * 50
    client.sendall(b"b" * 50)
    assert read_until_closed(server) == (b"b" * 50, "eof")


def test_limit_data_count_survives_update(proxy: Proxy, pair: Pair) -> None:
    """Toxiproxy's TestLimitDataToxicMayBeRestarted, end to end: raising the limit from 100
    to 120 after 60 bytes lets 60 more through, not 120."""
    proxy.add_toxic("limit_data", "upstream", bytes=100)
    client, server = pair
    client.sendall(b"a" * 60)
    assert recv_exactly(server, 60) == b"a" * 60
    proxy.update_toxic("limit_data_upstream", bytes=120)
    client.sendall(b"b" * 100)
    assert read_until_closed(server) == (b"b" * 60, "eof")


# -- toxicity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("toxicity", [0.0, 1.0])
def test_toxicity(proxy: Proxy, upstream: Upstream, toxicity: float) -> None:
    """Toxicity 0 never applies the toxic to a connection, toxicity 1 always does."""
    proxy.add_toxic("latency", "upstream", toxicity=toxicity, latency=300)

    def connection_on_time() -> None:
        with proxy.connect() as client, upstream.accept() as server:
            up, _ = timed_exchange(client, server, b"ping")
        assert_duration("toxicity", up, 0.300 * toxicity, EARLY, LATE)

    for _ in range(5):
        on_time(connection_on_time)


# -- proxies ------------------------------------------------------------------------------------


def test_disable_closes_connections_and_listener_enable_reopens(
    proxy: Proxy, upstream: Upstream, pair: Pair
) -> None:
    client, server = pair
    assert proxy.set_enabled(False)["enabled"] is False
    _, how = read_until_closed(client, timeout=2)
    assert how in ("eof", "reset")
    _, how = read_until_closed(server, timeout=2)
    assert how in ("eof", "reset")
    with pytest.raises(ConnectionRefusedError):
        proxy.connect()
    info = proxy.set_enabled(True)
    assert info["enabled"] is True and info["listen"] == proxy.listen
    with proxy.connect() as client2, upstream.accept() as server2:
        exchange(client2, server2)


def test_reset_removes_toxics_and_enables_proxies(
    api: Api, proxy: Proxy, upstream: Upstream
) -> None:
    proxy.add_toxic("latency", "upstream", latency=1000)
    proxy.add_toxic("timeout", "downstream", timeout=0)
    proxy.set_enabled(False)
    api.reset()
    info = proxy.info()
    assert info["enabled"] is True and info["toxics"] == []
    assert proxy.toxics() == []
    with proxy.connect() as client, upstream.accept() as server:
        up, down = timed_exchange(client, server, b"ping")
    assert up < NOT_HELD and down < NOT_HELD  # the 1 s latency and the timeout are gone


# -- where the embedded engine and Toxiproxy 2.12 differ ----------------------------------------
# Each test pins both behaviours, so a change on either side shows up here.


def per_kind(server: ApiServer, *, embedded: object, real: object) -> object:
    return embedded if server.kind == "embedded" else real


def test_half_close_is_forwarded_by_embedded_only(api_server: ApiServer, pair: Pair) -> None:
    """The embedded engine forwards a half-close (shutdown of one direction) and keeps the
    other direction open; Toxiproxy closes both directions when either one ends."""
    client, server = pair
    client.sendall(b"ping")
    client.shutdown(socket.SHUT_WR)
    assert read_until_closed(server) == (b"ping", "eof")
    server.sendall(b"pong")
    server.close()
    answer = per_kind(api_server, embedded=(b"pong", "eof"), real=(b"", "eof"))
    assert read_until_closed(client) == answer


def test_reset_peer_added_to_a_live_connection(
    api_server: ApiServer, proxy: Proxy, pair: Pair
) -> None:
    """Toxiproxy sets SO_LINGER 0 only on connections that start with reset_peer in their
    chain, so one added later closes them with FIN; the embedded engine always resets."""
    proxy.add_toxic("reset_peer", "upstream", timeout=0)
    client, server = pair
    client.sendall(b"x")
    expected = per_kind(api_server, embedded="reset", real="eof")
    assert wait_closed(client) == expected
    assert wait_closed(server) == expected


def test_reset_peer_with_toxicity_zero(
    api_server: ApiServer, proxy: Proxy, upstream: Upstream
) -> None:
    """A reset_peer toxic that is never applied still turns Toxiproxy's ordinary closes into
    resets (Shopify/toxiproxy#603); the embedded engine closes normally."""
    proxy.add_toxic("reset_peer", "downstream", toxicity=0, timeout=0)
    with proxy.connect() as client, upstream.accept() as server:
        exchange(client, server)
        server.close()
        assert wait_closed(client) == per_kind(api_server, embedded="eof", real="reset")


def test_removing_a_timeout_toxic_that_was_never_applied(
    api_server: ApiServer, proxy: Proxy, pair: Pair
) -> None:
    """Toxiproxy closes every connection of a removed timeout toxic, even those its
    toxicity left alone; the embedded engine closes only those where it dropped data."""
    proxy.add_toxic("timeout", "upstream", toxicity=0, timeout=0)
    client, server = pair
    exchange(client, server)
    proxy.remove_toxic("timeout_upstream")
    if api_server.kind == "embedded":
        assert_silent(client, 0.3)
        exchange(client, server)
    else:
        assert wait_closed(client) == "eof"


def test_bandwidth_rate_zero(api_server: ApiServer, proxy: Proxy, pair: Pair) -> None:
    """Rate 0 holds the data until the toxic is changed or removed (Toxiproxy's loop sends
    empty slices forever); the embedded engine waits for that change the same way."""
    proxy.add_toxic("bandwidth", "upstream", rate=0)
    client, server = pair
    client.sendall(b"a" * 1000)
    assert_silent(server, 0.3)
    proxy.remove_toxic("bandwidth_upstream")
    assert recv_exactly(server, 1000, timeout=1) == b"a" * 1000
