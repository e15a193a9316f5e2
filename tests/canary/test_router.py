"""The weighted router against real HTTP and TCP upstreams that say who they are.

Splits are checked exactly where a seed fixes them and within wide binomial bounds where
it does not; live changes under load must not fail a single request. Nothing asserts a
wall-clock upper bound: waits poll with generous deadlines that only stop a broken run.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from pytest_chaos.canary.router import Router
from pytest_chaos.core.seeding import draw

from ..doc_examples import examples_test
from .routerhelpers import (
    NamedHttpServer,
    NamedTcpServer,
    closed_port,
    pattern,
    tcp_exchange,
)

TIMEOUT = 10.0


@pytest.fixture
def a() -> Iterator[NamedHttpServer]:
    with NamedHttpServer("A") as server:
        yield server


@pytest.fixture
def b() -> Iterator[NamedHttpServer]:
    with NamedHttpServer("B") as server:
        yield server


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition()``; the deadline only stops a run that is broken."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.005)


def names(client: httpx.Client, count: int, path: str = "/", **options: Any) -> list[str]:
    return [client.get(path, **options).text for _ in range(count)]


def expected_choices(seed: int, weights: list[tuple[str, float]], count: int) -> list[str]:
    """The choices a seeded router makes: for its n-th request without a key, a point on
    the cumulative weights that the seed and n alone fix."""
    total = sum(weight for _, weight in weights)
    chosen = []
    for number in range(1, count + 1):
        point = draw(seed, "route", number) * total
        for name, weight in weights:
            point -= weight
            if point < 0:
                chosen.append(name)
                break
    return chosen


class Load:
    """Threads that send requests through the router, each on its own keep-alive client,
    until stopped; every answer is kept."""

    def __init__(self, url: str, path: str = "/", threads: int = 4) -> None:
        self.url = url
        self.path = path
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[int, str]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=TIMEOUT) as client:
            while not self.stop_event.is_set():
                try:
                    response = client.get(self.path)
                except httpx.HTTPError as error:
                    with self.lock:
                        self.failures.append(repr(error))
                    continue
                with self.lock:
                    self.answers.append((response.status_code, response.text))

    def count(self) -> int:
        with self.lock:
            return len(self.answers)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(TIMEOUT)

    def wait_more(self, count: int) -> None:
        """Let at least ``count`` more requests be answered."""
        target = self.count() + count
        wait_for(lambda: self.count() >= target, f"{count} more answers")


# -- splitting -------------------------------------------------------------------------------


def test_a_seeded_split_is_exact_and_reproducible(a: NamedHttpServer, b: NamedHttpServer) -> None:
    pools = {"stable": [a.address], "canary": [b.address]}
    runs = []
    for _ in range(2):
        with (
            Router(pools, {"stable": 90, "canary": 10}, seed=7) as router,
            httpx.Client(base_url=router.url) as client,
        ):
            runs.append(names(client, 200))
            counts = router.counts()
    expected = expected_choices(7, [("A", 90), ("B", 10)], 200)
    assert runs[0] == runs[1] == expected
    assert counts["stable"] == {"requests": expected.count("A"), "errors": 0}
    assert counts["canary"] == {"requests": expected.count("B"), "errors": 0}


def test_an_unseeded_split_follows_the_weights(a: NamedHttpServer, b: NamedHttpServer) -> None:
    with Router(
        {"stable": [a.address], "canary": [b.address]}, {"stable": 3, "canary": 1}
    ) as router:
        results: list[list[str]] = []

        def send() -> None:
            with httpx.Client(base_url=router.url) as client:
                results.append(names(client, 500))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 6)
        seen = Counter(name for result in results for name in result)
    # 2,000 requests at 25%: mean 500, standard deviation 19.4; six of them either side
    assert sum(seen.values()) == 2000
    assert 384 <= seen["B"] <= 616, seen


def test_all_traffic_goes_to_the_first_pool_by_default(
    a: NamedHttpServer, b: NamedHttpServer
) -> None:
    with Router({"blue": [a.address], "green": [b.address]}) as router:
        assert router.weights() == {"blue": 100.0, "green": 0.0}
        with httpx.Client(base_url=router.url) as client:
            assert set(names(client, 20)) == {"A"}


def test_instances_of_a_pool_take_turns_over_pooled_connections(a: NamedHttpServer) -> None:
    with NamedHttpServer("A2") as a2, Router({"stable": [a.address, a2.address]}) as router:
        with httpx.Client(base_url=router.url) as client:
            assert names(client, 6) == ["A", "A2"] * 3
            names(client, 44)
        assert a.requests == a2.requests == 25
        # keep-alive to the upstreams: a handful of connections, not one per request
        assert a.connections < 5 and a2.connections < 5


# -- live changes ----------------------------------------------------------------------------


def test_a_weight_change_applies_to_the_next_request_on_the_same_connection(
    a: NamedHttpServer, b: NamedHttpServer
) -> None:
    with (
        Router({"stable": [a.address], "canary": [b.address]}) as router,
        httpx.Client(base_url=router.url) as client,
    ):
        seen = []
        ports = set()
        for weights in ({"canary": 1}, {"stable": 1}, {"canary": 1}, {"stable": 1, "canary": 0}):
            router.set_weights(weights)
            response = client.get("/")
            seen.append(response.text)
            ports.add(response.extensions["network_stream"].get_extra_info("client_addr"))
        assert seen == ["B", "A", "B", "A"]
        assert len(ports) == 1, "the client's keep-alive connection was dropped"
        assert router.weights() == {"stable": 1.0, "canary": 0.0}


def test_weight_changes_under_load_fail_no_request(a: NamedHttpServer, b: NamedHttpServer) -> None:
    schedule = [{"stable": 95, "canary": 5}, {"stable": 50, "canary": 50}, {"canary": 1}]
    schedule += [{"stable": 1, "canary": 3}, {"stable": 1}]
    with Router({"stable": [a.address], "canary": [b.address]}, seed=3) as router:
        with Load(router.url) as load:
            for weights in schedule * 3:
                router.set_weights(weights)
                load.wait_more(20)
            router.set_weights({"canary": 1})
            switched = load.count() + 8  # requests may be in flight across the switch
            load.wait_more(40)
        answers = load.answers
        observations = router.observations()
    assert load.failures == []
    assert {status for status, _ in answers} == {200}
    assert {text for _, text in answers} == {"A", "B"}
    assert {text for _, text in answers[switched:]} == {"B"}
    assert len(observations) == len(answers) and all(item.ok for item in observations)


def test_set_pool_replaces_instances_under_load_without_a_failure(a: NamedHttpServer) -> None:
    with (
        NamedHttpServer("A2") as a2,
        NamedHttpServer("A3") as a3,
        Router({"app": [a.address]}) as router,
        Load(router.url, "/slow?ms=5") as load,
    ):
        load.wait_more(20)
        router.set_pool("app", [a.address, a2.address])
        load.wait_more(20)
        router.set_pool("app", [a2.address])  # returns once a's requests have finished
        a.stop()  # a hard stop, as a killed instance
        load.wait_more(20)
        router.set_pool("app", [a2.address, a3.address])
        load.wait_more(20)
        router.set_pool("app", [a3.address])
        a2.stop()
        switched = load.count() + 8
        load.wait_more(40)
    assert load.failures == []
    assert {status for status, _ in load.answers} == {200}
    assert {text for _, text in load.answers} == {"A", "A2", "A3"}
    assert {text for _, text in load.answers[switched:]} == {"A3"}
    counts = router.counts()
    assert counts["app"]["errors"] == 0
    assert counts[f"app/{a2.address}"]["requests"] == a2.requests


def test_set_pool_returns_once_requests_to_removed_instances_have_finished(
    a: NamedHttpServer, b: NamedHttpServer
) -> None:
    with Router({"app": [a.address]}) as router:
        answers: list[httpx.Response] = []
        slow = threading.Thread(
            target=lambda: answers.append(httpx.get(f"{router.url}/slow?ms=300", timeout=TIMEOUT))
        )
        slow.start()
        wait_for(lambda: a.requests == 1, "the slow request to reach its instance")
        router.set_pool("app", [b.address])
        finished = [(item.upstream, item.ok) for item in router.observations()]
        a.stop()  # safe now: nothing is in flight to it
        slow.join(TIMEOUT)
        with httpx.Client(base_url=router.url) as client:
            assert client.get("/").text == "B"
    assert finished == [(a.address, True)]
    assert answers[0].text == "A"


def test_a_pool_emptied_by_set_pool_answers_503(a: NamedHttpServer, b: NamedHttpServer) -> None:
    with (
        Router({"stable": [a.address], "canary": [b.address]}, {"canary": 1}) as router,
        httpx.Client(base_url=router.url) as client,
    ):
        router.set_pool("canary", [])
        response = client.get("/")
        assert response.status_code == 503 and "'canary' has no instance" in response.text
        router.set_weights({"stable": 1})
        assert client.get("/").text == "A"  # the same connection carries on
        first = router.observations()[0]
        assert (first.pool, first.upstream, first.ok, first.status) == ("canary", "", False, None)
        assert router.counts()["canary"] == {"requests": 1, "errors": 1}


# -- sticky keys -----------------------------------------------------------------------------


def test_sticky_keys_stay_on_their_pool_and_move_only_when_needed(
    a: NamedHttpServer, b: NamedHttpServer
) -> None:
    users = [f"user-{number}" for number in range(200)]
    pools = {"stable": [a.address], "canary": [b.address]}
    with (
        Router(pools, {"stable": 90, "canary": 10}, sticky="X-User", seed=1) as router,
        httpx.Client(base_url=router.url) as client,
    ):

        def where() -> dict[str, str]:
            return {user: client.get("/", headers={"X-User": user}).text for user in users}

        at_10 = where()
        assert where() == at_10  # the same key, the same pool
        router.set_weights({"stable": 80, "canary": 20})
        at_20 = where()
        router.set_weights({"stable": 1})  # roll back
        at_0 = where()
        router.set_weights({"stable": 80, "canary": 20})
        again = where()
        unkeyed = Counter(names(client, 100))
    assert 5 <= list(at_10.values()).count("B") <= 40
    # growing the canary moves stable keys to it, never canary keys away
    assert all(at_20[user] == "B" for user in users if at_10[user] == "B")
    assert 20 <= list(at_20.values()).count("B") <= 70
    # a rollback moves the canary's keys, and only them
    assert set(at_0.values()) == {"A"}
    assert again == at_20
    assert set(unkeyed) == {"A", "B"}  # requests without the header are spread by chance


def test_tcp_sticky_by_client_keeps_one_pool() -> None:
    with NamedTcpServer("A") as a, NamedTcpServer("B") as b:
        pools = {"stable": [a.address], "canary": [b.address]}
        with Router(pools, {"stable": 1, "canary": 1}, mode="tcp", sticky="client") as router:
            seen = {tcp_exchange(router.address, b"x")[0] for _ in range(10)}
    assert len(seen) == 1


# -- failures --------------------------------------------------------------------------------


def test_an_upstream_that_is_down_gets_a_502_recorded_as_failed(a: NamedHttpServer) -> None:
    down = closed_port()
    with (
        Router({"stable": [a.address], "canary": [down]}, {"canary": 1}) as router,
        httpx.Client(base_url=router.url) as client,
    ):
        response = client.get("/")
        assert response.status_code == 502
        assert down in response.text and "canary" in response.text
        router.set_weights({"stable": 1})
        assert client.get("/").text == "A"  # the client's connection survived the 502
        first = router.observations()[0]
        assert (first.pool, first.upstream, first.ok, first.status) == ("canary", down, False, None)
        assert router.counts()["canary"] == {"requests": 1, "errors": 1}
        assert router.counts()[f"canary/{down}"] == {"requests": 1, "errors": 1}
        assert router.counts()["stable"] == {"requests": 1, "errors": 0}


def test_statuses_and_closes_before_an_answer(a: NamedHttpServer) -> None:
    with (
        Router({"stable": [a.address]}) as router,
        httpx.Client(base_url=router.url) as client,
    ):
        assert client.get("/status/503").status_code == 503
        assert client.get("/status/404").status_code == 404
        assert client.get("/close").status_code == 502  # closed without an answer
        assert [client.get("/bye").text for _ in range(3)] == ["A"] * 3  # stale pooled connections
        assert client.head("/").status_code == 200
        found = [(item.ok, item.status) for item in router.observations()]
    assert found == [(False, 503), (True, 404), (False, None), *[(True, 200)] * 4]


def test_a_client_that_gives_up_is_recorded_as_failed(a: NamedHttpServer) -> None:
    with Router({"stable": [a.address]}) as router:
        with httpx.Client(base_url=router.url) as client, pytest.raises(httpx.ReadTimeout):
            client.get("/hang", timeout=0.2)
        wait_for(lambda: len(router.observations()) == 1, "the abandoned request's record")
        item = router.observations()[0]
        assert (item.pool, item.ok, item.status) == ("stable", False, None)
        assert item.latency_ms >= 100  # it waited for the client's 0.2 s timeout


# -- what passes through ---------------------------------------------------------------------


def test_observations_and_counts(a: NamedHttpServer, b: NamedHttpServer) -> None:
    with NamedHttpServer("A2") as a2:
        pools = {"stable": [a.address, a2.address], "canary": [b.address]}
        with (
            Router(pools, {"stable": 1, "canary": 1}, seed=11) as router,
            httpx.Client(base_url=router.url) as client,
        ):
            first = [client.get("/").headers["X-Server"] for _ in range(20)]
            middle = time.monotonic()
            second = [client.get("/").headers["X-Server"] for _ in range(20)]
            everything = router.observations()
            later = router.observations(since=middle)
            canary = router.observations(pool="canary")
            counts = router.counts()
    where = {a.address: "A", a2.address: "A2", b.address: "B"}
    assert [where[item.upstream] for item in everything] == first + second
    assert [where[item.upstream] for item in later] == second
    assert canary == [item for item in everything if item.pool == "canary"]
    assert all(item.ok and item.status == 200 and item.latency_ms > 0 for item in everything)
    assert [item.at for item in everything] == sorted(item.at for item in everything)
    assert counts["stable"]["requests"] == (first + second).count("A") + (first + second).count(
        "A2"
    )
    assert counts["canary"]["requests"] == (first + second).count("B")
    assert counts[f"stable/{a.address}"]["requests"] == (first + second).count("A")
    assert abs(counts[f"stable/{a.address}"]["requests"] - a2.requests) <= 1


def test_request_bodies_pass_intact(a: NamedHttpServer) -> None:
    big = pattern(3 << 20)  # more than the router keeps for a retry

    def pieces() -> Iterator[bytes]:  # no length: httpx sends it chunked
        yield b"first,"
        yield big[:100_000]
        yield b",last"

    with (
        Router({"stable": [a.address]}) as router,
        httpx.Client(base_url=router.url) as client,
    ):
        assert client.post("/echo", content=b"small body").content == b"small body"
        assert client.post("/echo", content=big).content == big
        assert (
            client.post("/echo", content=pieces()).content == b"first," + big[:100_000] + b",last"
        )
        assert client.put("/echo", content=b"").content == b""
        assert all(item.ok for item in router.observations())


def test_a_large_response_streams_intact(a: NamedHttpServer) -> None:
    size = 16 << 20
    with (
        Router({"stable": [a.address]}) as router,
        httpx.Client(base_url=router.url, timeout=TIMEOUT) as client,
        client.stream("GET", f"/big?n={size}") as response,
    ):
        digest = hashlib.sha256()
        for piece in response.iter_bytes():
            digest.update(piece)
        assert digest.hexdigest() == hashlib.sha256(pattern(size)).hexdigest()
    assert router.observations()[0].ok


# -- TCP -------------------------------------------------------------------------------------


def test_tcp_mode_splits_connections_and_relays_intact() -> None:
    with NamedTcpServer("A") as a, NamedTcpServer("B") as b:
        pools = {"stable": [a.address], "canary": [b.address]}
        with Router(pools, {"stable": 70, "canary": 30}, mode="tcp", seed=5) as router:
            seen = [tcp_exchange(router.address, b"ping")[0] for _ in range(40)]
            name, echo = tcp_exchange(router.address, pattern(4 << 20))
            wait_for(lambda: len(router.observations()) == 41, "every connection's record")
            observations = router.observations()
    every = [*seen, name]
    assert every == expected_choices(5, [("A", 70), ("B", 30)], 41)
    assert echo == pattern(4 << 20)
    assert all(item.ok and item.status is None for item in observations)
    assert Counter(item.pool for item in observations) == Counter(
        {"stable": every.count("A"), "canary": every.count("B")}
    )


def test_tcp_mode_records_an_upstream_that_is_down() -> None:
    down = closed_port()
    with Router({"stable": [down]}, mode="tcp") as router:
        with socket.create_connection(_host_port(router.address), timeout=TIMEOUT) as sock:
            sock.settimeout(TIMEOUT)
            assert sock.recv(10) == b""  # closed: nothing to relay to
        wait_for(lambda: len(router.observations()) == 1, "the connection's record")
        assert router.observations()[0].ok is False
        assert router.counts()["stable"] == {"requests": 1, "errors": 1}


# -- life and input --------------------------------------------------------------------------


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _read_until(sock: socket.socket, end: bytes) -> None:
    received = b""
    while not received.endswith(end):
        piece = sock.recv(1 << 16)
        assert piece, f"closed after {received!r}"
        received += piece


def _read_to_the_end(sock: socket.socket) -> None:
    try:
        while sock.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_close_leaves_no_thread_or_socket(mode: str) -> None:
    # A first router makes what a process makes once and keeps (uvloop's signal pipe): the
    # count starts after one has come and gone
    Router({"stable": ["127.0.0.1:9"]}, mode=mode).start().close()
    fds, threads = _open_fds(), set(threading.enumerate())
    server = NamedHttpServer("A") if mode == "http" else NamedTcpServer("A")
    router = Router({"stable": [server.address]}, mode=mode).start()
    idle = socket.create_connection(_host_port(router.address), timeout=TIMEOUT)
    busy = socket.create_connection(_host_port(router.address), timeout=TIMEOUT)
    if mode == "http":  # one connection idle between requests, one waiting for an answer
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _read_until(idle, b"\r\n\r\nA")
        busy.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: server.requests == 2, "the request to hang")  # type: ignore[union-attr]
    else:  # two connections relaying
        _read_until(idle, b"A\n")
        _read_until(busy, b"A\n")
    router.close()
    router.close()  # idempotent
    for sock in (idle, busy):
        _read_to_the_end(sock)  # the router closed it
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(_host_port(router.address), timeout=TIMEOUT).close()
    assert not any(thread.name == "pytest-chaos-router" for thread in threading.enumerate())
    server.stop()
    wait_for(lambda: set(threading.enumerate()) <= threads, "the servers' threads to end")
    # fewer than before is no leak: another test's objects may be collected meanwhile
    wait_for(lambda: _open_fds() <= fds, "every socket to be closed")


def test_start_twice_and_address_before_start(a: NamedHttpServer) -> None:
    router = Router({"stable": [a.address]})
    with pytest.raises(RuntimeError, match="start"):
        _ = router.address
    with router:
        assert router.url == f"http://{router.address}"
        with pytest.raises(RuntimeError, match="already started"):
            router.start()


def test_a_listen_address_in_use_fails_at_start(a: NamedHttpServer) -> None:
    with Router({"stable": [a.address]}) as first:
        second = Router({"stable": [a.address]}, listen=first.address)
        with pytest.raises(OSError):
            second.start()
        second.close()


@pytest.mark.parametrize(
    ("pools", "options", "error", "message"),
    [
        ({}, {}, ValueError, "pools is empty"),
        ({"stable": []}, {}, ValueError, "pool 'stable' has no upstream"),
        ({"stable": "127.0.0.1:1"}, {}, TypeError, "must be a list"),
        ({"a/b": ["127.0.0.1:1"]}, {}, ValueError, "'a/b'"),
        ({"stable": ["localhost"]}, {}, ValueError, "'localhost'"),
        ({"stable": ["127.0.0.1:99999"]}, {}, ValueError, "'127.0.0.1:99999'"),
        ({"stable": ["127.0.0.1:0"]}, {}, ValueError, "port from 1"),
        ({"stable": ["127.0.0.1:1"]}, {"weights": {"canry": 1}}, ValueError, "'canry'"),
        ({"stable": ["127.0.0.1:1"]}, {"weights": {"stable": -5}}, ValueError, "-5"),
        ({"stable": ["127.0.0.1:1"]}, {"weights": {"stable": float("nan")}}, ValueError, "nan"),
        ({"stable": ["127.0.0.1:1"]}, {"weights": {"stable": True}}, ValueError, "True"),
        ({"stable": ["127.0.0.1:1"]}, {"weights": {"stable": 0}}, ValueError, "positive weight"),
        ({"stable": ["127.0.0.1:1"]}, {"mode": "udp"}, ValueError, "'udp'"),
        ({"stable": ["127.0.0.1:1"]}, {"mode": "tcp", "sticky": "X-User"}, ValueError, "'X-User'"),
        ({"stable": ["127.0.0.1:1"]}, {"sticky": "X User"}, ValueError, "'X User'"),
        ({"stable": ["127.0.0.1:1"]}, {"listen": "nowhere"}, ValueError, "'nowhere'"),
        ({"stable": ["127.0.0.1:1"]}, {"connect_timeout": 0}, ValueError, "connect_timeout"),
    ],
)
def test_bad_input_is_refused_naming_the_value(
    pools: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Router(pools, **options)


def test_bad_live_changes_are_refused_and_change_nothing(a: NamedHttpServer) -> None:
    router = Router({"stable": [a.address], "canary": [a.address]}, {"stable": 9, "canary": 1})
    with pytest.raises(ValueError, match="'blue'"):
        router.set_weights({"blue": 1})
    with pytest.raises(ValueError, match="positive weight"):
        router.set_weights({"stable": 0, "canary": 0})
    with pytest.raises(ValueError, match="unknown pool 'blue'"):
        router.set_pool("blue", [a.address])
    with pytest.raises(ValueError, match="'bad'"):
        router.set_pool("canary", ["bad"])
    assert router.weights() == {"stable": 9.0, "canary": 1.0}


test_the_doc_example_runs = examples_test("canary-router.md")
