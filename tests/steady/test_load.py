"""The load generator against real local servers: bounds, the open loop, error
classification, TCP and callable targets, stopping, and that nothing leaks.

Timing assertions are generous lower bounds or orderings only; speed is measured in
benchmarks/load_generator.py, not asserted here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_chaos.steady.load import CallTarget, HttpTarget, Load, RunningLoad, TcpTarget
from pytest_chaos.steady.metrics import Metrics, Sample

from ..doc_examples import examples_test
from .loadserver import EchoServer, LoadServer


@pytest.fixture(scope="module")
def server() -> Iterator[LoadServer]:
    # One load first: the first event loop of a process (libuv, under uvloop) opens a pipe
    # that lives as long as the process; it must not count as a leak of the first test.
    Load.call(lambda: None, rps=1000, count=1).run()
    with LoadServer() as running:
        yield running


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as running:
        yield running


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: the servers' connection counts still say it
        return None


@pytest.fixture(autouse=True)
def nothing_leaks(server: LoadServer, echo: EchoServer) -> Iterator[None]:
    """After each test: no thread the test started is left, every connection the load
    opened is closed (the servers saw them close), and the process holds no more file
    descriptors than before (fewer is no leak: a descriptor some earlier test left to the
    garbage collector may close meanwhile)."""
    server.reset()
    threads, fds = set(threading.enumerate()), open_fds()
    yield
    assert server.wait_idle() == 0, "HTTP connections left open"
    assert echo.wait_idle() == 0, "TCP connections left open"
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not set(threading.enumerate()) - threads
    if fds is not None:
        while (open_fds() or 0) > fds and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (open_fds() or 0) <= fds


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def by_intended(samples: list[Sample]) -> list[Sample]:
    return sorted(samples, key=lambda s: s.intended)


# -- validation ------------------------------------------------------------------------


URL = "http://127.0.0.1:1/"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rps": 0, "count": 1}, ValueError, "rps must be a positive number.*got 0"),
        ({"rps": -5, "count": 1}, ValueError, "rps must be.*got -5"),
        ({"rps": math.nan, "count": 1}, ValueError, "rps must be.*got nan"),
        ({"rps": math.inf, "count": 1}, ValueError, "rps must be finite, got inf"),
        ({"rps": True, "count": 1}, ValueError, "rps must be.*got True"),
        ({"rps": "10", "count": 1}, ValueError, "rps must be.*got '10'"),
        ({"rps": 10}, ValueError, "a load must be bounded: give duration_s, count, or both"),
        ({"rps": 10, "duration_s": 0}, ValueError, "duration_s must be a positive.*got 0"),
        ({"rps": 10, "duration_s": -1.5}, ValueError, "duration_s must be.*got -1.5"),
        ({"rps": 10, "duration_s": math.inf}, ValueError, "duration_s must be.*got inf"),
        ({"rps": 10, "count": 0}, ValueError, "count must be an integer >= 1, got 0"),
        ({"rps": 10, "count": 2.5}, ValueError, "count must be an integer >= 1, got 2.5"),
        ({"rps": 10, "count": True}, ValueError, "count must be an integer >= 1, got True"),
        ({"rps": 10, "count": 1, "concurrency": 0}, ValueError, "concurrency must be.*got 0"),
        ({"rps": 10, "count": 1, "timeout": 0}, ValueError, "timeout must be.*got 0"),
        ({"rps": 10, "count": 1, "timeout": math.nan}, ValueError, "timeout must.*got nan"),
        ({"rps": 10, "count": 1, "ok": 200}, TypeError, "ok must be a callable.*got 200"),
        ({"rps": 10, "count": 1, "method": "GE T"}, ValueError, "method must be.*'GE T'"),
        ({"rps": 10, "count": 1, "content": 5}, TypeError, "content must be bytes.*got 5"),
    ],
)
def test_bad_http_loads_are_refused_naming_the_value(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Load.http(URL, **kwargs)


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://127.0.0.1/", "http://", "/path", ""])
def test_a_url_that_is_not_absolute_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=f"url must be an absolute http.*got {url!r}"):
        Load.http(url, rps=1, count=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"address": "127.0.0.1"}, ValueError, "address must be 'host:port', got '127.0.0.1'"),
        ({"address": "127.0.0.1:"}, ValueError, "address must be 'host:port'"),
        ({"address": ":80"}, ValueError, "address must be 'host:port', got ':80'"),
        ({"address": "h:70000"}, ValueError, "address must be 'host:port', got 'h:70000'"),
        ({"address": 8080}, TypeError, "address must be a 'host:port' string, got 8080"),
        ({"address": "h:1", "payload": "x"}, TypeError, "payload must be bytes, got 'x'"),
        ({"address": "h:1", "expect": -1}, ValueError, "expect must be a byte count.*got -1"),
        ({"address": "h:1", "expect": "ok"}, ValueError, "expect must be.*got 'ok'"),
    ],
)
def test_bad_tcp_loads_are_refused(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    address = kwargs.pop("address")
    with pytest.raises(error, match=match):
        Load.tcp(address, rps=1, count=1, **kwargs)


def test_bad_callable_loads_are_refused() -> None:
    with pytest.raises(TypeError, match="fn must be a callable taking no arguments, got 3"):
        Load.call(3, rps=1, count=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ok must be a callable"):
        Load.call(print, rps=1, count=1, ok="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be"):
        Load.call(print, rps=1, count=1, timeout=-1)


def test_a_load_is_an_immutable_description_validated_again_when_derived() -> None:
    load = Load.http(URL, rps=10, duration_s=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        load.rps = 5  # type: ignore[misc]
    assert dataclasses.replace(load, rps=50).total == 100
    with pytest.raises(ValueError, match=r"rps must be.*got 0"):
        dataclasses.replace(load, rps=0)
    with pytest.raises(TypeError, match="target must be a LoadTarget"):
        Load("http://x/", rps=1, count=1)  # type: ignore[arg-type]
    assert isinstance(load.target, HttpTarget)
    assert isinstance(Load.tcp("h:1", rps=1, count=1).target, TcpTarget)
    assert isinstance(Load.call(print, rps=1, count=1).target, CallTarget)
    assert "GET http://127.0.0.1:1/" in repr(load)


@pytest.mark.parametrize(
    ("rps", "duration_s", "count", "total"),
    [
        (100, 0.5, None, 50),
        (3, 1, None, 3),
        (7, 0.5, None, 4),  # due at 0, 1/7, 2/7, 3/7: all before 0.5 s
        (10, None, 7, 7),
        (1000, 1, 20, 20),
        (10, 0.2, 50, 2),
        (0.5, 1, None, 1),
    ],
)
def test_the_schedule_holds_what_is_due_before_the_bounds(
    rps: float, duration_s: float | None, count: int | None, total: int
) -> None:
    assert Load.http(URL, rps=rps, duration_s=duration_s, count=count).total == total


# -- bounds and the open loop ----------------------------------------------------------


def test_a_count_bound_sends_exactly_that_many(server: LoadServer) -> None:
    metrics = Load.http(server.url(), rps=200, count=37).run()
    assert metrics.count == 37
    assert metrics.outcomes == {"200": 37}
    assert metrics.errors == 0
    assert server.requests == 37


def test_a_time_bound_sends_what_was_due_each_on_its_own_schedule(server: LoadServer) -> None:
    with Load.http(server.url(), rps=80, duration_s=0.5).start() as running:
        assert running.wait(10)
    samples = by_intended(running.samples())
    assert len(samples) == 40 == server.requests == running.scheduled
    # open loop: request i was due at started_at + i / rps, whatever came before
    for i, s in enumerate(samples):
        assert s.intended == pytest.approx(running.started_at + i / 80, abs=1e-9)
        assert s.intended <= s.started <= s.ended
    assert samples[-1].intended < running.started_at + 0.5
    assert running.done and running.unsent == 0


def test_a_stalled_server_gets_requests_on_schedule_up_to_the_cap_and_latency_counts_the_wait(
    server: LoadServer,
) -> None:
    """Coordinated omission, avoided: while the server stalls for 300 ms, the load keeps
    sending on schedule until ``concurrency`` requests are in flight; later ones queue, and
    their latency, measured from when they were due, includes the queueing."""
    rps, cap, stall_s = 100, 4, 0.3
    with Load.http(server.url(), rps=rps, duration_s=1.0, concurrency=cap).start() as running:
        time.sleep(max(0.0, running.started_at + 0.3 - time.monotonic()))
        stall_at = time.monotonic()
        server.stall(stall_s)
        assert running.wait(10)
    samples = by_intended(running.samples())
    assert len(samples) == 100
    assert all(s.ok for s in samples)
    assert server.max_in_flight <= cap
    assert running.peak_lanes == cap

    stalled = [s for s in samples if stall_at + 0.02 <= s.intended < stall_at + stall_s - 0.05]
    assert len(stalled) >= 15
    # every request due during the stall waited for its end, from when it was due
    for s in stalled:
        assert s.ended >= stall_at + stall_s - 0.01
        assert s.latency_s >= stall_at + stall_s - 0.01 - s.intended
    # at most ``cap`` of them were sent before the stall ended, and spent it at the server...
    stall_end = stall_at + stall_s
    sent_during = [s for s in stalled if s.started < stall_end - 0.01]
    assert len(sent_during) <= cap
    assert all(s.started + s.service_time_s >= stall_end - 0.01 for s in sent_during)
    # ... the rest waited for a free lane: queued in the generator, not at the server
    queued = [s for s in stalled if s not in sent_during]
    assert len(queued) >= len(stalled) - cap >= 11
    # the queueing is in the latency percentiles, not hidden in fewer samples
    service_p50 = sorted(s.service_time_s for s in queued)[len(queued) // 2]
    latency_p50 = sorted(s.latency_s for s in queued)[len(queued) // 2]
    assert latency_p50 > 2 * service_p50
    assert running.metrics().p99_ms >= 200  # type: ignore[operator]
    # the schedule never moved: every request kept its due time
    for i, s in enumerate(samples):
        assert s.intended == pytest.approx(running.started_at + i / rps, abs=1e-9)


# -- HTTP outcomes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "outcome", "ok"),
    [
        ("/fast", "200", True),
        ("/status/404", "404", True),  # the client's mistake, not the service failing
        ("/status/429", "429", False),
        ("/status/503", "503", False),
        ("/status/500", "500", False),
    ],
)
def test_http_outcomes_are_statuses_and_the_default_verdict(
    server: LoadServer, path: str, outcome: str, ok: bool
) -> None:
    metrics = Load.http(server.url(path), rps=100, count=5).run()
    assert metrics.outcomes == {outcome: 5}
    assert metrics.errors == (0 if ok else 5)


def test_a_custom_verdict_sees_the_response(server: LoadServer) -> None:
    seen: list[httpx.Response] = []

    def ok(response: httpx.Response) -> bool:
        seen.append(response)
        return response.status_code == 200 and response.text == "ok"

    assert Load.http(server.url("/status/404"), rps=100, count=3, ok=ok).run().errors == 3
    assert Load.http(server.url(), rps=100, count=3, ok=ok).run().errors == 0
    assert seen[-1].request.url == server.url()


def test_a_verdict_that_raises_makes_an_error_sample(server: LoadServer) -> None:
    def ok(response: httpx.Response) -> bool:
        raise KeyError("no")

    metrics = Load.http(server.url(), rps=100, count=2, ok=ok).run()
    assert metrics.outcomes == {"KeyError": 2}


def test_method_headers_and_body_reach_the_server(server: LoadServer) -> None:
    load = Load.http(
        server.url("/fast?x=1"),
        rps=100,
        count=2,
        method="post",
        headers={"X-Test": "load"},
        content="hello",
    )
    assert load.run().outcomes == {"200": 2}
    assert server.last is not None
    method, target, headers, body = server.last
    assert (method, target, body) == ("POST", "/fast?x=1", b"hello")
    assert headers["x-test"] == "load"
    assert headers["user-agent"] == "pytest-chaos-load"


def test_a_read_timeout_is_an_error_sample_after_the_timeout(server: LoadServer) -> None:
    metrics = Load.http(server.url("/hang"), rps=20, count=3, timeout=0.2).run()
    assert metrics.outcomes == {"ReadTimeout": 3}
    assert metrics.errors == 3
    assert all(s.service_time_s >= 0.19 for s in metrics.samples)


def test_a_slow_answer_past_the_timeout_is_a_read_timeout(server: LoadServer) -> None:
    metrics = Load.http(server.url("/slow?ms=600"), rps=50, count=2, timeout=0.15).run()
    assert metrics.outcomes == {"ReadTimeout": 2}


def test_a_slow_answer_within_the_timeout_is_ok_and_slow(server: LoadServer) -> None:
    metrics = Load.http(server.url("/slow?ms=80"), rps=50, count=3).run()
    assert metrics.outcomes == {"200": 3}
    assert metrics.p50_ms >= 79  # type: ignore[operator]


def test_a_connection_closed_without_an_answer_is_an_error(server: LoadServer) -> None:
    metrics = Load.http(server.url("/close"), rps=50, count=3).run()
    assert metrics.outcomes == {"RemoteProtocolError": 3}


def test_a_refused_connection_is_a_connect_error() -> None:
    metrics = Load.http(f"http://127.0.0.1:{closed_port()}/", rps=50, count=4).run()
    assert metrics.outcomes == {"ConnectError": 4}
    assert metrics.error_rate == 1.0


# -- TCP and callable targets ----------------------------------------------------------


@pytest.mark.parametrize("expect", [b"ping", 4, None, 0])
def test_tcp_sends_the_payload_and_reads_the_reply(echo: EchoServer, expect: Any) -> None:
    metrics = Load.tcp(echo.address, rps=100, count=6, payload=b"ping", expect=expect).run()
    assert metrics.outcomes == {"ok": 6}
    assert echo.connections_total >= 6


def test_tcp_other_bytes_than_expected_are_a_mismatch(echo: EchoServer) -> None:
    metrics = Load.tcp(echo.address, rps=100, count=3, payload=b"ping", expect=b"pong").run()
    assert metrics.outcomes == {"mismatch": 3}
    assert metrics.errors == 3


def test_tcp_a_reply_that_never_comes_times_out(echo: EchoServer) -> None:
    load = Load.tcp(echo.address, rps=50, count=2, payload=b"ab", expect=4, timeout=0.2)
    metrics = load.run()
    assert metrics.outcomes == {"Timeout": 2}
    assert all(s.service_time_s >= 0.19 for s in metrics.samples)


def test_tcp_a_refused_connection_is_an_error() -> None:
    metrics = Load.tcp(f"127.0.0.1:{closed_port()}", rps=50, count=3).run()
    assert metrics.outcomes == {"ConnectionRefusedError": 3}


def test_a_sync_callable_runs_in_threads_and_raising_is_an_error() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def fn() -> int:
        with lock:
            calls.append(threading.get_ident())
            n = len(calls)
        if n % 3 == 0:
            raise ValueError(n)
        return n

    metrics = Load.call(fn, rps=200, count=12).run()
    assert len(calls) == 12
    assert threading.get_ident() not in calls
    assert metrics.outcomes == {"ok": 8, "ValueError": 4}


def test_an_async_callable_is_awaited_and_ok_judges_its_result() -> None:
    results = iter(range(10))

    async def fn() -> int:
        await asyncio.sleep(0.001)
        return next(results)

    metrics = Load.call(fn, rps=200, count=10, ok=lambda n: n % 2 == 0).run()
    assert metrics.outcomes == {"ok": 5, "error": 5}


def test_a_callable_past_its_timeout_is_given_up(request: pytest.FixtureRequest) -> None:
    release = threading.Event()
    request.addfinalizer(release.set)

    async def hangs() -> None:
        await asyncio.sleep(60)

    def blocks() -> None:
        release.wait(5)

    assert Load.call(hangs, rps=50, count=2, timeout=0.1).run().outcomes == {"Timeout": 2}
    metrics = Load.call(blocks, rps=50, count=2, timeout=0.1).run()
    assert metrics.outcomes == {"Timeout": 2}
    assert all(s.service_time_s >= 0.09 for s in metrics.samples)
    release.set()  # the abandoned threads end with their calls (nothing_leaks waits for it)


def test_concurrency_caps_requests_in_flight() -> None:
    in_flight = peak = 0
    lock = threading.Lock()

    def fn() -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1

    with Load.call(fn, rps=200, count=30, concurrency=3).start() as running:
        assert running.wait(10)
    assert peak <= 3
    assert running.peak_lanes == 3
    metrics = running.metrics()
    assert metrics.count == 30 and metrics.errors == 0
    # at 20 calls a second the load fell behind: the wait shows as lag, and in the latency
    assert metrics.lag_max_ms >= 100  # type: ignore[operator]
    assert metrics.max_ms >= metrics.lag_max_ms  # type: ignore[operator]


# -- the handle ------------------------------------------------------------------------


def test_stop_mid_run_returns_promptly_and_keeps_what_was_sent(server: LoadServer) -> None:
    running = Load.http(server.url(), rps=100, duration_s=30).start()
    time.sleep(0.3)
    began = time.monotonic()
    running.stop()
    assert time.monotonic() - began < 5  # far below the 30 s the load was to last
    assert running.done
    running.stop()  # idempotent
    assert running.wait(0) is True
    count = len(running.samples())
    assert 10 <= count < 3000
    assert count == server.requests == running.scheduled - running.unsent
    assert all(s.ok for s in running.samples())


def test_stop_lets_requests_in_flight_finish(server: LoadServer) -> None:
    running = Load.http(server.url("/slow?ms=300"), rps=20, duration_s=10, concurrency=64).start()
    time.sleep(0.2)
    running.stop()
    samples = running.samples()
    assert len(samples) >= 3
    assert all(s.outcome == "200" and s.service_time_s >= 0.29 for s in samples)


def test_stop_while_queued_behind_a_slow_target_sends_no_more(server: LoadServer) -> None:
    running = Load.http(server.url("/slow?ms=200"), rps=100, duration_s=10, concurrency=1)
    with running.start() as handle:
        time.sleep(0.3)
    assert handle.unsent > 0
    assert len(handle.samples()) == server.requests == handle.scheduled - handle.unsent


def test_stop_against_a_hung_server_is_bounded_by_the_timeout(server: LoadServer) -> None:
    running = Load.http(server.url("/hang"), rps=50, duration_s=10, timeout=0.3).start()
    time.sleep(0.1)
    began = time.monotonic()
    running.stop()
    assert time.monotonic() - began < 5
    # httpx's read timeout ends them; on a machine too busy to run the load's loop on time,
    # the overall deadline (or the connect timeout) may come first
    outcomes = {s.outcome for s in running.samples()}
    assert outcomes and outcomes <= {"ReadTimeout", "Timeout", "ConnectTimeout"}, outcomes
    assert not any(s.ok for s in running.samples())


def test_samples_and_metrics_can_be_read_while_it_runs(server: LoadServer) -> None:
    with Load.http(server.url(), rps=100, duration_s=0.6).start() as running:
        assert not running.done
        assert running.started_at <= time.monotonic()
        time.sleep(0.3)
        first = running.samples()
        first.clear()  # a copy
        assert running.samples()
        midway = time.monotonic()
        assert running.wait(10)
    everything = running.metrics()
    assert everything.count == 60
    early, late = running.metrics(until=midway), running.metrics(since=midway)
    assert early.count + late.count == 60
    assert early.count >= 10 and late.count >= 10
    assert running.metrics(running.started_at, running.started_at + 0.1).count == 10
    assert [b["count"] for b in everything.per_second()] == [60]
    summary = everything.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert "done" in repr(running)


def test_run_with_a_timeout_stops_the_load(server: LoadServer) -> None:
    metrics = Load.http(server.url(), rps=50, duration_s=30).run(timeout=0.3)
    assert isinstance(metrics, Metrics)
    assert 5 <= metrics.count < 1500


def test_leaving_the_block_with_an_exception_stops_the_load(server: LoadServer) -> None:
    load = Load.http(server.url(), rps=50, duration_s=30)
    with pytest.raises(RuntimeError, match="test"), load.start() as running:
        raise RuntimeError("test")
    assert running.done


def test_a_broken_target_surfaces_its_error_and_leaks_nothing() -> None:
    class Broken(RuntimeError):
        pass

    class BrokenTarget(CallTarget):
        def session(self, concurrency: int) -> Any:
            session = super().session(concurrency)

            async def open() -> None:
                raise Broken("cannot open a lane")

            session.open = open  # type: ignore[method-assign]
            return session

    running = RunningLoad(Load(BrokenTarget(print), rps=100, duration_s=5))
    with pytest.raises(Broken, match="cannot open a lane"):
        running.wait(10)
    assert running.done
    assert running.samples() == []
    with pytest.raises(Broken):
        running.stop()


def test_a_target_that_cannot_set_up_fails_the_start() -> None:
    class Unready(CallTarget):
        def session(self, concurrency: int) -> Any:
            session = super().session(concurrency)

            async def setup() -> None:
                raise OSError("no such service")

            session.setup = setup  # type: ignore[method-assign]
            return session

    with pytest.raises(OSError, match="no such service"):
        Load(Unready(print), rps=100, count=5).start()


test_the_docs_example_runs = examples_test("load.md")
