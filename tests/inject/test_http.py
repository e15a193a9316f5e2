"""HTTP faults for httpx against a real server on 127.0.0.1: every fault kind, sync and
async, request matching, triggers and seeds, the life of a rule, mounting the transport in
an application's own client, bad input, and the record of what was injected.

No timing assertion here has an upper bound: a slow machine may always take longer."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pytest_chaos.faults import FaultLog
from pytest_chaos.inject import ChaosConfig, ChaosHTTP, ChaosMonkey

from .conftest import BIG_BODY, CHUNK, CHUNKS, TEXT_BODY, LocalServer

CHUNKED_BODY = CHUNK * CHUNKS


def seeded(seed: int, **config: Any) -> ChaosHTTP:
    """HTTP faults on an enabled monkey with this seed (striking every matching request
    unless a rule says otherwise)."""
    return ChaosHTTP(ChaosMonkey(ChaosConfig(enabled=True, failure_rate=1.0, **config), seed=seed))


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """What ``call`` returned, and how long it took (monotonic seconds)."""
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def statuses(client: httpx.Client, url: str, count: int) -> list[int]:
    return [client.get(url).status_code for _ in range(count)]


# -- status ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [503, 500])
def test_status_answers_without_reaching_the_server(http_server: LocalServer, code: int) -> None:
    chaos = ChaosHTTP()
    chaos.status(code)
    with chaos.client() as client:
        response = client.get(http_server.url("/text"))
    assert response.status_code == code
    assert response.headers["x-chaos-fault"] == "status"
    assert response.text == f"chaos: injected HTTP {code}\n"
    assert response.request.url == http_server.url("/text")
    assert http_server.hits() == 0


def test_status_429_carries_retry_after(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(429, retry_after=7)
    with chaos.client() as client:
        response = client.get(http_server.url("/json"))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert http_server.hits() == 0


def test_status_retry_after_may_be_an_http_date(http_server: LocalServer) -> None:
    date = "Wed, 21 Oct 2037 07:28:00 GMT"
    chaos = ChaosHTTP()
    chaos.status(503, retry_after=date)
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).headers["retry-after"] == date


def test_status_custom_headers_and_body(http_server: LocalServer) -> None:
    """The rule's headers and body are the answer's; the fault header stays, so a log
    reader can tell the answer was injected."""
    chaos = ChaosHTTP()
    chaos.status(
        502,
        headers={"content-type": "application/json", "x-upstream": "payments"},
        body=json.dumps({"error": "bad gateway"}),
    )
    with chaos.client() as client:
        response = client.get(http_server.url("/json"))
    assert response.status_code == 502
    assert response.json() == {"error": "bad gateway"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-upstream"] == "payments"
    assert response.headers["x-chaos-fault"] == "status"
    assert http_server.hits() == 0


def test_status_body_may_be_bytes_or_empty(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, body=b"\x00\x01", first=1)
    chaos.status(500, body="")
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).content == b"\x00\x01"
        empty = client.get(http_server.url("/text"))
    assert (empty.status_code, empty.content) == (500, b"")


def test_status_async(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(429, retry_after=3, path="/json")

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with chaos.async_client() as client:
            return await client.get(http_server.url("/json")), await client.get(
                http_server.url("/text")
            )

    limited, passed = asyncio.run(main())
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert limited.headers["x-chaos-fault"] == "status"
    assert (passed.status_code, passed.content) == (200, TEXT_BODY)
    assert (http_server.hits("/json"), http_server.hits("/text")) == (0, 1)


# -- latency -----------------------------------------------------------------------------


def test_latency_delays_the_request_and_it_goes_on(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.latency(120)
    with chaos.client() as client:
        response, elapsed = timed(lambda: client.get(http_server.url("/text")))
    assert response.content == TEXT_BODY
    assert "x-chaos-fault" not in response.headers
    [injection] = chaos.injections
    assert (injection.kind, injection.latency_ms) == ("latency", 120.0)
    assert elapsed >= injection.latency_ms / 1000
    assert http_server.hits("/text") == 1


def test_latency_range_is_drawn_and_never_cut_short(http_server: LocalServer) -> None:
    chaos = seeded(7)
    chaos.latency((20, 80))
    with chaos.client() as client:
        for _ in range(4):
            _, elapsed = timed(lambda: client.get(http_server.url("/text")))
            drawn = chaos.injections[-1].latency_ms
            assert 20 <= drawn <= 80
            assert elapsed >= drawn / 1000
    assert len({injection.latency_ms for injection in chaos.injections}) > 1
    assert http_server.hits() == 4


def test_latency_async(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.latency(100)

    async def main() -> tuple[httpx.Response, float]:
        async with chaos.async_client() as client:
            started = time.monotonic()
            response = await client.get(http_server.url("/text"))
            return response, time.monotonic() - started

    response, elapsed = asyncio.run(main())
    assert response.content == TEXT_BODY
    assert elapsed >= chaos.injections[0].latency_ms / 1000 == 0.1
    assert http_server.hits() == 1


# -- connect_error -----------------------------------------------------------------------


def test_connect_error_never_reaches_the_server(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.connect_error()
    with chaos.client() as client, pytest.raises(httpx.ConnectError, match="injected") as raised:
        client.get(http_server.url("/text"))
    assert raised.value.request.url == http_server.url("/text")
    assert http_server.hits() == 0


def test_connect_error_async(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.connect_error()

    async def main() -> None:
        async with chaos.async_client() as client:
            await client.get(http_server.url("/text"))

    with pytest.raises(httpx.ConnectError):
        asyncio.run(main())
    assert http_server.hits() == 0


# -- read_timeout ------------------------------------------------------------------------


def test_read_timeout_after_the_given_time(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.read_timeout(after_s=0.15)
    with chaos.client(timeout=10) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout, match=r"0\.15 s"):
            client.get(http_server.url("/text"))
    assert time.monotonic() - started >= 0.15
    assert chaos.injections[0].details == {"after_s": 0.15}


def test_read_timeout_by_default_after_the_clients_read_timeout(
    http_server: LocalServer,
) -> None:
    """As a silent server does: the error comes when the client's own read timeout ends."""
    chaos = ChaosHTTP()
    chaos.read_timeout()
    with chaos.client(timeout=httpx.Timeout(10, read=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(http_server.url("/text"))
    assert time.monotonic() - started >= 0.2


def test_read_timeout_uses_the_requests_own_timeout(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.read_timeout()
    with chaos.client(timeout=10) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(http_server.url("/text"), timeout=0.2)
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("after_s", [0.15, None])
def test_read_timeout_async(http_server: LocalServer, after_s: float | None) -> None:
    chaos = ChaosHTTP()
    chaos.read_timeout(after_s=after_s)

    async def main() -> float:
        async with chaos.async_client(timeout=0.15) as client:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await client.get(http_server.url("/text"))
            return time.monotonic() - started

    assert asyncio.run(main()) >= 0.15


# -- truncate ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/chunked"])
def test_truncate_cuts_a_longer_body(http_server: LocalServer, path: str) -> None:
    chaos = ChaosHTTP()
    chaos.truncate(1000)
    with (
        chaos.client() as client,
        pytest.raises(httpx.RemoteProtocolError, match="truncated after 1000 bytes"),
    ):
        client.get(http_server.url(path))
    assert http_server.hits(path) == 1


@pytest.mark.parametrize(
    ("path", "body", "after_bytes"),
    [
        *[("/big", BIG_BODY, n) for n in (0, 1, 1000, 1024, 20_000, 70_000, 200_000)],
        *[("/chunked", CHUNKED_BODY, n) for n in (0, 1, 1000, 1024, 20_000)],
    ],
)
def test_truncate_delivers_exactly_after_bytes_then_fails(
    http_server: LocalServer, path: str, body: bytes, after_bytes: int
) -> None:
    """Streamed, the body stops after exactly ``after_bytes`` bytes, all of them the
    server's, whatever the chunk boundaries (1024 is one of /chunked's; /big arrives in
    reads of up to 64 KiB)."""
    chaos = ChaosHTTP()
    chaos.truncate(after_bytes)
    received = bytearray()
    with chaos.client() as client, client.stream("GET", http_server.url(path)) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_bytes():
                received += chunk
    assert bytes(received) == body[:after_bytes]


@pytest.mark.parametrize("after_bytes", [len(TEXT_BODY), len(TEXT_BODY) + 1, 10_000])
def test_truncate_passes_a_body_no_longer_than_the_limit(
    http_server: LocalServer, after_bytes: int
) -> None:
    chaos = ChaosHTTP()
    chaos.truncate(after_bytes)
    with chaos.client() as client:
        response = client.get(http_server.url("/text"))
    assert response.content == TEXT_BODY
    assert http_server.hits("/text") == 1
    assert chaos.injections[0].kind == "truncate"


def test_truncate_async(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.truncate(5000, path="/big")

    async def main() -> bytes:
        received = bytearray()
        async with chaos.async_client() as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(http_server.url("/big"))
            async with client.stream("GET", http_server.url("/big")) as response:
                with pytest.raises(httpx.RemoteProtocolError):
                    async for chunk in response.aiter_bytes():
                        received += chunk
            whole = await client.get(http_server.url("/text"))
            assert whole.content == TEXT_BODY
        return bytes(received)

    assert asyncio.run(main()) == BIG_BODY[:5000]
    assert http_server.hits("/big") == 2


def test_truncated_response_closed_early_frees_its_connection(
    http_server: LocalServer,
) -> None:
    """A truncated response closed unread, or after one chunk, gives its connection back:
    with a pool of one connection, the next request still gets one."""
    chaos = ChaosHTTP()
    chaos.truncate(100, first=2)
    transport = chaos.transport(httpx.HTTPTransport(limits=httpx.Limits(max_connections=1)))
    timeout = httpx.Timeout(10, pool=1.0)
    with httpx.Client(transport=transport, timeout=timeout) as client:
        with client.stream("GET", http_server.url("/big")):
            pass
        with client.stream("GET", http_server.url("/big")) as response:
            assert next(response.iter_bytes()) == BIG_BODY[:100]
        assert client.get(http_server.url("/text")).content == TEXT_BODY


def test_truncated_async_response_closed_early_frees_its_connection(
    http_server: LocalServer,
) -> None:
    chaos = ChaosHTTP()
    chaos.truncate(100, first=2)

    async def main() -> bytes:
        wrapped = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))
        timeout = httpx.Timeout(10, pool=1.0)
        async with httpx.AsyncClient(
            transport=chaos.async_transport(wrapped), timeout=timeout
        ) as client:
            async with client.stream("GET", http_server.url("/big")):
                pass
            async with client.stream("GET", http_server.url("/big")) as response:
                async for chunk in response.aiter_bytes():
                    assert chunk == BIG_BODY[:100]
                    break
            return (await client.get(http_server.url("/text"))).content

    assert asyncio.run(main()) == TEXT_BODY


# -- matching ----------------------------------------------------------------------------


def test_host_pattern(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, host="localhost")
    chaos.status(502, host="127.0.0.*")
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).status_code == 502


def test_host_with_port_matches_that_origin_only(
    http_server: LocalServer, other_http_server: LocalServer
) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, host=f"127.0.0.1:{http_server.port}")
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).status_code == 503
        assert client.get(other_http_server.url("/text")).content == TEXT_BODY
    assert (http_server.hits(), other_http_server.hits()) == (0, 1)


def test_host_with_port_glob(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, host="127.0.0.1:*")
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).status_code == 503


def test_path_globs(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, path="/orders/*")
    chaos.status(500, path="/t?xt")
    with chaos.client() as client:
        assert client.get(http_server.url("/orders/17")).status_code == 503
        assert client.get(http_server.url("/text?page=2")).status_code == 500
        assert client.get(http_server.url("/json")).json() == {"ok": True}
        assert client.get(http_server.url("/orders")).status_code == 404  # the server's
    assert http_server.hits() == 2


@pytest.mark.parametrize("method", ["post", "POST", ["Post"], ["delete", "post"], ("POST",)])
def test_method_str_or_list_any_case(http_server: LocalServer, method: str | list[str]) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, method=method)
    with chaos.client() as client:
        assert client.post(http_server.url("/echo"), content=b"hi").status_code == 503
        assert client.get(http_server.url("/text")).content == TEXT_BODY
    assert (http_server.hits("/echo"), http_server.hits("/text")) == (0, 1)


def test_untouched_post_reaches_the_server_whole(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, method="GET")
    with chaos.client() as client:
        response = client.post(
            http_server.url("/echo"), json={"order": 1}, headers={"x-tenant": "a"}
        )
    assert response.json() == {"order": 1}
    assert chaos.injections == []


def test_when_filters_by_the_request(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    seen: list[httpx.Request] = []

    def tenant_a(request: httpx.Request) -> bool:
        seen.append(request)
        return request.headers.get("x-tenant") == "a"

    chaos.status(503, when=tenant_a)
    with chaos.client() as client:
        assert client.get(http_server.url("/text"), headers={"x-tenant": "a"}).status_code == 503
        assert client.get(http_server.url("/text"), headers={"x-tenant": "b"}).status_code == 200
    assert [request.headers["x-tenant"] for request in seen] == ["a", "b"]
    assert http_server.hits() == 1


def test_all_filters_must_match(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.connect_error(host="127.0.0.1", path="/echo", method="POST")
    with chaos.client() as client:
        assert client.get(http_server.url("/echo")).status_code == 404  # GET: the server's
        with pytest.raises(httpx.ConnectError):
            client.post(http_server.url("/echo"), content=b"x")
    assert http_server.hits("/echo") == 1


# -- several rules -----------------------------------------------------------------------


def test_latency_then_status_both_apply(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.latency(100)
    chaos.status(503)
    with chaos.client() as client:
        response, elapsed = timed(lambda: client.get(http_server.url("/text")))
    assert response.status_code == 503
    assert [injection.kind for injection in chaos.injections] == ["latency", "status"]
    assert elapsed >= 0.1
    assert http_server.hits() == 0


def test_first_ending_rule_stops_the_rest(http_server: LocalServer) -> None:
    """Rules apply in the order they were added; once one ends the request, the later
    ones do not see it: their counters do not move (the 500 rule, ``first=1``, still has
    its one request left when the 503 rule ends)."""
    chaos = ChaosHTTP()
    first = chaos.status(503)
    chaos.status(500, first=1)
    chaos.latency(50)
    with chaos.client() as client:
        assert statuses(client, http_server.url("/text"), 3) == [503, 503, 503]
        first.end()
        assert statuses(client, http_server.url("/text"), 2) == [500, 200]
    assert [(i.kind, i.call) for i in chaos.injections] == [
        ("status", 1),
        ("status", 2),
        ("status", 3),
        ("status", 1),
        ("latency", 1),
    ]


# -- triggers ----------------------------------------------------------------------------


def test_every_second_request(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, every=2)
    with chaos.client() as client:
        assert statuses(client, http_server.url("/text"), 6) == [200, 503] * 3
    assert [injection.call for injection in chaos.injections] == [2, 4, 6]
    assert http_server.hits() == 3


def test_first_n_requests_then_they_pass(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, first=2)
    with chaos.client() as client:
        assert statuses(client, http_server.url("/text"), 4) == [503, 503, 200, 200]
    assert http_server.hits() == 2


def test_every_counts_only_matching_requests(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(503, every=2, path="/json")
    with chaos.client() as client:
        codes = [
            client.get(http_server.url(path)).status_code
            for path in ["/json", "/text", "/text", "/json", "/json", "/json"]
        ]
    assert codes == [200, 200, 200, 503, 200, 503]


def test_for_a_time_window_then_they_pass(http_server: LocalServer) -> None:
    """``for_s`` counts from the rule's first matching request, however long after it was
    added that comes: requests inside the window are struck, later ones pass."""
    chaos = ChaosHTTP()
    chaos.status(503, for_s=0.3)
    time.sleep(0.4)  # longer than the window, before any request: it does not count
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).status_code == 503
        window_over = time.monotonic() + 0.3  # the window opened before this line
        time.sleep(max(0.0, window_over + 0.05 - time.monotonic()))
        assert statuses(client, http_server.url("/text"), 2) == [200, 200]


def pattern(seed: int, server: LocalServer, rate: float = 0.5, count: int = 24) -> list[int]:
    chaos = seeded(seed)
    chaos.status(503, rate=rate)
    with chaos.client() as client:
        return statuses(client, server.url("/text"), count)


def test_same_seed_same_pattern_other_seed_another(http_server: LocalServer) -> None:
    """A rate draws from the rule's seeded stream: the same seed strikes the same requests,
    request by request; another seed strikes others."""
    first = pattern(1234, http_server)
    assert pattern(1234, http_server) == first
    assert 0 < first.count(503) < len(first)
    assert pattern(4321, http_server) != first


def text_pattern(seed: int, server: LocalServer, *, others_between: bool) -> list[int]:
    chaos = seeded(seed)
    chaos.status(503, rate=0.5, path="/text")
    with chaos.client() as client:
        codes = []
        for _ in range(24):
            if others_between:
                assert client.get(server.url("/json")).status_code == 200
            codes.append(client.get(server.url("/text")).status_code)
    return codes


def test_seed_pattern_holds_with_unmatched_requests_between(http_server: LocalServer) -> None:
    """Requests a rule does not match take no draw from its stream, so they do not shift
    the pattern of those it does."""
    alone = text_pattern(99, http_server, others_between=False)
    assert text_pattern(99, http_server, others_between=True) == alone
    assert 0 < alone.count(503) < len(alone)


def test_rate_from_the_monkeys_failure_rate(http_server: LocalServer) -> None:
    chaos = ChaosHTTP(ChaosMonkey(ChaosConfig(enabled=True, failure_rate=0.0), seed=1))
    chaos.status(503)
    chaos.status(500, rate=1.0, path="/json")
    with chaos.client() as client:
        assert statuses(client, http_server.url("/text"), 5) == [200] * 5
        assert client.get(http_server.url("/json")).status_code == 500


def test_every_is_exact_across_threads(http_server: LocalServer) -> None:
    """Threads sharing a client see one sequence of calls: every=2 strikes exactly half."""
    chaos = ChaosHTTP()
    chaos.status(503, every=2)
    codes: list[int] = []
    lock = threading.Lock()
    with chaos.client() as client:

        def work() -> None:
            for _ in range(5):
                code = client.get(http_server.url("/text")).status_code
                with lock:
                    codes.append(code)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(codes) == [200] * 20 + [503] * 20
    assert sorted(injection.call for injection in chaos.injections) == list(range(2, 41, 2))
    assert http_server.hits() == 20


# -- the life of a rule ------------------------------------------------------------------


def test_rules_added_after_the_client_apply(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).status_code == 200
        chaos.status(503)
        assert client.get(http_server.url("/text")).status_code == 503


def test_end_and_with_remove_a_rule(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    with chaos.client() as client:
        fault = chaos.status(503)
        assert fault.active
        assert client.get(http_server.url("/text")).status_code == 503
        fault.end()
        fault.end()  # twice: nothing more
        assert not fault.active
        assert client.get(http_server.url("/text")).status_code == 200
        with chaos.connect_error() as scoped, pytest.raises(httpx.ConnectError):
            client.get(http_server.url("/text"))
        assert not scoped.active
        assert client.get(http_server.url("/text")).status_code == 200
    assert http_server.hits() == 2


def test_undo_ends_every_rule_and_closes_its_clients(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    faults = [chaos.status(503, path="/text"), chaos.connect_error(path="/json")]
    client = chaos.client()
    assert client.get(http_server.url("/text")).status_code == 503
    assert chaos.undo() == []
    assert client.is_closed
    assert not any(fault.active for fault in faults)
    assert len(chaos.injections) == 1  # the record stays
    with chaos.client() as fresh:
        assert fresh.get(http_server.url("/text")).status_code == 200
        assert fresh.get(http_server.url("/json")).status_code == 200


def test_disabled_monkey_turns_every_http_fault_off(http_server: LocalServer) -> None:
    monkey = ChaosMonkey(ChaosConfig(enabled=True, failure_rate=1.0), seed=3)
    chaos = ChaosHTTP(monkey)
    chaos.status(503, path="/text")
    chaos.connect_error(path="/json")
    chaos.truncate(1, path="/big")
    with chaos.client() as client:
        monkey.enabled = False
        assert client.get(http_server.url("/text")).status_code == 200
        assert client.get(http_server.url("/json")).status_code == 200
        assert client.get(http_server.url("/big")).content == BIG_BODY
        with monkey.active():
            assert client.get(http_server.url("/text")).status_code == 503
        assert client.get(http_server.url("/text")).status_code == 200
    assert [injection.call for injection in chaos.injections] == [1]
    assert http_server.hits() == 4


def test_a_monkey_disabled_by_its_config_injects_nothing(http_server: LocalServer) -> None:
    chaos = ChaosHTTP(ChaosMonkey(ChaosConfig(enabled=False, failure_rate=1.0)))
    chaos.status(503)
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).status_code == 200
    assert chaos.injections == []


def test_dry_run_records_but_every_request_goes_through(http_server: LocalServer) -> None:
    monkey = ChaosMonkey(
        ChaosConfig(enabled=True, failure_rate=1.0), seed=5, log=FaultLog(dry_run=True)
    )
    chaos = ChaosHTTP(monkey)
    chaos.status(503, path="/text")
    chaos.connect_error(path="/json")
    chaos.read_timeout(after_s=30, path="/orders/*")
    chaos.truncate(10, path="/big")
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).content == TEXT_BODY
        assert client.get(http_server.url("/json")).json() == {"ok": True}
        assert client.get(http_server.url("/orders/1")).status_code == 200
        assert client.get(http_server.url("/big")).content == BIG_BODY
    assert http_server.hits() == 4
    assert [(i.kind, i.dry_run) for i in chaos.injections] == [
        ("status", True),
        ("connect_error", True),
        ("read_timeout", True),
        ("truncate", True),
    ]


def test_the_chaos_http_fixture_drives_a_real_server(
    chaos_http: ChaosHTTP, http_server: LocalServer
) -> None:
    chaos_http.status(503, first=1)
    client = chaos_http.client(base_url=http_server.origin)
    assert statuses(client, "/text", 2) == [503, 200]
    assert chaos_http.injections[0].target == f"GET {http_server.url('/text')}"
    # the client is closed at teardown by the fixture


# -- transports in the application's own client ------------------------------------------


def test_mounted_transport_affects_only_its_origin(
    http_server: LocalServer, other_http_server: LocalServer
) -> None:
    chaos = ChaosHTTP()
    chaos.status(503)
    with httpx.Client(mounts={http_server.origin: chaos.transport()}) as client:
        assert client.get(http_server.url("/text")).status_code == 503
        assert client.get(other_http_server.url("/text")).content == TEXT_BODY
    assert (http_server.hits(), other_http_server.hits()) == (0, 1)
    assert len(chaos.injections) == 1


def test_mounted_async_transport_affects_only_its_origin(
    http_server: LocalServer, other_http_server: LocalServer
) -> None:
    chaos = ChaosHTTP()
    chaos.connect_error()

    async def main() -> bytes:
        mounts = {http_server.origin: chaos.async_transport()}
        async with httpx.AsyncClient(mounts=mounts) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(http_server.url("/text"))
            return (await client.get(other_http_server.url("/text"))).content

    assert asyncio.run(main()) == TEXT_BODY
    assert (http_server.hits(), other_http_server.hits()) == (0, 1)


class CountingTransport(httpx.HTTPTransport):
    """A real transport that counts the requests it sends and notes when it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)

    def close(self) -> None:
        self.closed = True
        super().close()


def test_transport_wraps_the_given_transport(http_server: LocalServer) -> None:
    """The wrapped transport is the one that talks to the server (only for requests the
    rules let through), and it closes with the client."""
    wrapped = CountingTransport()
    chaos = ChaosHTTP()
    chaos.status(503, first=1)
    with httpx.Client(transport=chaos.transport(wrapped)) as client:
        assert statuses(client, http_server.url("/text"), 2) == [503, 200]
    assert (wrapped.sent, http_server.hits()) == (1, 1)
    assert wrapped.closed


def test_client_passes_transport_settings_on(http_server: LocalServer) -> None:
    """``client(limits=...)`` configures the transport the rules wrap: with one connection
    held by an open stream, the next request waits for the pool and times out."""
    chaos = ChaosHTTP()
    client = chaos.client(
        base_url=http_server.origin,
        limits=httpx.Limits(max_connections=1),
        timeout=httpx.Timeout(10, pool=0.1),
        headers={"x-tenant": "a"},
    )
    with client.stream("GET", "/big"), pytest.raises(httpx.PoolTimeout):
        client.get("/text")
    assert client.post("/echo", content=b"ok").content == b"ok"
    chaos.undo()


def test_client_through_a_proxy_still_applies_the_rules(http_server: LocalServer) -> None:
    """``client(proxy=...)`` goes to the wrapped transport, not to a mount of its own that
    would bypass the rules. The local server stands in for the proxy: it sees the
    absolute URL a client sends to a proxy."""
    chaos = ChaosHTTP()
    chaos.status(503, host="chaos.invalid", first=1)
    with chaos.client(proxy=http_server.origin) as client:
        assert client.get("http://chaos.invalid/text").status_code == 503
        assert client.get("http://chaos.invalid/text").status_code == 404  # the "proxy"'s
    assert http_server.hits("http://chaos.invalid/text") == 1


def test_client_with_a_transport_refuses_transport_settings() -> None:
    chaos = ChaosHTTP()
    with pytest.raises(TypeError, match="limits"):
        chaos.client(transport=httpx.HTTPTransport(), limits=httpx.Limits(max_connections=1))


def test_async_client_passes_transport_settings_on(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()

    async def main() -> None:
        async with (
            chaos.async_client(
                base_url=http_server.origin,
                limits=httpx.Limits(max_connections=1),
                timeout=httpx.Timeout(10, pool=0.1),
            ) as client,
            client.stream("GET", "/big"),
        ):
            with pytest.raises(httpx.PoolTimeout):
                await client.get("/text")

    asyncio.run(main())


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("add", "error", "message"),
    [
        (lambda c: c.status(99), ValueError, "status code 99"),
        (lambda c: c.status(600), ValueError, "status code 600"),
        (lambda c: c.status("503"), ValueError, "status code '503'"),
        (lambda c: c.status(True), ValueError, "status code True"),
        (lambda c: c.status(429, retry_after=-1), ValueError, "retry_after=-1"),
        (lambda c: c.status(429, retry_after=1.5), ValueError, "retry_after=1.5"),
        (lambda c: c.status(429, retry_after=""), ValueError, "retry_after=''"),
        (lambda c: c.truncate(-1), ValueError, "after_bytes=-1"),
        (lambda c: c.truncate(2.5), ValueError, "after_bytes=2.5"),
        (lambda c: c.read_timeout(after_s=-1), ValueError, "after_s=-1"),
        (lambda c: c.latency(-5), ValueError, "ms=-5"),
        (lambda c: c.latency((50, 10)), ValueError, "ms=(50, 10)"),
        (lambda c: c.status(503, path=""), ValueError, "path=''"),
        (lambda c: c.status(503, host=""), ValueError, "host=''"),
        (lambda c: c.status(503, path=5), ValueError, "path=5"),
        (lambda c: c.status(503, method=[]), ValueError, "method=[]"),
        (lambda c: c.status(503, method=""), ValueError, "method=''"),
        (lambda c: c.status(503, method=7), ValueError, "method=7"),
        (lambda c: c.status(503, rate=1.5), ValueError, "rate=1.5"),
        (lambda c: c.status(503, rate=0.5, every=2), ValueError, "rate=0.5 and every=2"),
        (lambda c: c.status(503, every=0), ValueError, "every=0"),
        (lambda c: c.status(503, first=0), ValueError, "first=0"),
        (lambda c: c.status(503, for_s=0), ValueError, "for_s=0"),
        (lambda c: c.status(503, when="tenant"), TypeError, "when='tenant'"),
        (lambda c: c.status(503, hots="api"), TypeError, "status(): unknown argument 'hots'"),
        (lambda c: c.latency(5, every_s=1), TypeError, "latency(): unknown argument 'every_s'"),
        (lambda c: c.connect_error(code=1), TypeError, "unknown argument 'code'"),
    ],
)
def test_bad_input_is_refused_naming_the_value(
    add: Callable[[ChaosHTTP], Any], error: type[Exception], message: str
) -> None:
    chaos = ChaosHTTP()
    with pytest.raises(error, match=re.escape(message)):
        add(chaos)
    assert chaos.monkey.log.faults == []  # nothing half-added


# -- the record --------------------------------------------------------------------------


def test_injections_say_what_where_and_which_call(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.status(429, retry_after=2, every=2, path="/json")
    chaos.latency(5, path="/text")
    with chaos.client() as client:
        client.get(http_server.url("/text"))
        for _ in range(4):
            client.get(http_server.url("/json"), params={"page": 1})
    limited = [i for i in chaos.injections if i.kind == "status"]
    assert [i.call for i in limited] == [2, 4]
    assert limited[0].target == f"GET {http_server.url('/json')}?page=1"
    assert limited[0].details == {"status": 429, "retry_after": "2"}
    assert limited[0].fault == "http.status"
    [delayed] = [i for i in chaos.injections if i.kind == "latency"]
    assert (delayed.target, delayed.latency_ms, delayed.details) == (
        f"GET {http_server.url('/text')}",
        5.0,
        {},
    )
    assert "call 2 of GET" in limited[0].describe()
    records = [injection.to_json() for injection in chaos.injections]
    assert json.loads(json.dumps(records)) == records
    assert records[1]["details"] == {"status": 429, "retry_after": "2"}


def test_fault_records_in_the_log(http_server: LocalServer) -> None:
    """Each rule is logged once, with its match and trigger; ending it marks it rolled back."""
    chaos = ChaosHTTP()
    fault = chaos.status(503, host="127.0.0.1", method="get", first=3)
    [record] = chaos.monkey.log.faults
    assert (record.kind, record.target) == ("http.status", "host=127.0.0.1 method=GET")
    assert fault.record is record
    assert record.rolled_back_at is None
    fault.end()
    assert record.rolled_back_at is not None


# -- later additions: delivered timeouts, IPv6 patterns, replay across ports, dry run --------


def test_read_timeout_delivered_reaches_the_server_and_loses_the_answer(
    http_server: LocalServer,
) -> None:
    """``delivered=True``: the server acts on the request, the client still times out, and
    the wait actually used (the client's read timeout) is recorded."""
    chaos = ChaosHTTP()
    chaos.read_timeout(delivered=True, path="/text")
    with chaos.client(timeout=httpx.Timeout(10, read=0.1)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(http_server.url("/text"), content=b"pay 10 EUR")
        assert http_server.hits("/text") == 1
        assert client.get(http_server.url("/json")).status_code == 200  # the pool is fine
    assert chaos.injections[0].details == {"after_s": 0.1, "delivered": True}


def test_read_timeout_delivered_async(http_server: LocalServer) -> None:
    chaos = ChaosHTTP()
    chaos.read_timeout(after_s=0, delivered=True)

    async def run() -> None:
        async with chaos.async_client() as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(http_server.url("/text"))

    asyncio.run(run())
    assert http_server.hits("/text") == 1


def test_read_timeout_without_a_client_timeout_fails_at_once(http_server: LocalServer) -> None:
    """A silent server would hang a client that has no read timeout forever; the fault
    raises at once instead, and says it waited 0 s."""
    chaos = ChaosHTTP()
    chaos.read_timeout()
    with chaos.client(timeout=None) as client, pytest.raises(httpx.ReadTimeout):
        client.get(http_server.url("/text"))
    assert chaos.injections[0].details == {"after_s": 0.0}
    assert http_server.hits() == 0


@pytest.mark.parametrize(
    ("pattern", "url", "matched"),
    [
        ("::1", "http://[::1]:8080/", True),
        ("::1", "http://127.0.0.1:8080/", False),
        ("[::1]:8080", "http://[::1]:8080/", True),
        ("[::1]:8080", "http://[::1]:8081/", False),
        ("[::1]", "http://[::1]:9/", True),
        ("[::1]:8*", "http://[::1]:8443/", True),
        ("shop.local:80", "http://shop.local/", True),
        ("*.local:443", "https://api.shop.local/", True),
        ("*.local:443", "http://api.shop.local/", False),
    ],
)
def test_host_patterns_with_ipv6_and_ports(pattern: str, url: str, matched: bool) -> None:
    """A host with one ``:`` is ``host:port``; IPv6 addresses are bare or bracketed."""
    chaos = ChaosHTTP()
    chaos.status(503, host=pattern)
    plan = chaos.plan(httpx.Request("GET", url))
    assert (plan is not None) is matched


def test_a_rules_pattern_replays_whatever_port_it_names(
    http_server: LocalServer, other_http_server: LocalServer
) -> None:
    """Streams are named by the rule's kind and order, not by its match, so a rule naming
    this run's ephemeral port strikes the same requests as one naming another port."""
    patterns = []
    for server in (http_server, other_http_server):
        chaos = seeded(5)
        chaos.status(503, host=f"127.0.0.1:{server.port}", rate=0.5)
        with chaos.client() as client:
            patterns.append(statuses(client, server.url("/text"), 24))
    assert patterns[0] == patterns[1]
    assert 200 in patterns[0] and 503 in patterns[0]


def test_dry_run_counts_as_a_real_run_would(http_server: LocalServer) -> None:
    """Under dry run a rule that would end the request still stops the rules after it, so
    the dry run records exactly what a real run would inject."""
    records = []
    for dry_run in (False, True):
        monkey = ChaosMonkey(
            ChaosConfig(enabled=True, failure_rate=1.0), seed=3, log=FaultLog(dry_run=dry_run)
        )
        chaos = ChaosHTTP(monkey)
        chaos.status(503, rate=0.5)
        chaos.latency(1, every=2)
        with chaos.client() as client:
            statuses(client, http_server.url("/text"), 20)
        records.append([(i.fault, i.call) for i in chaos.injections])
    assert records[0] == records[1]


def test_retry_after_and_a_retry_after_header_are_refused_together() -> None:
    with pytest.raises(ValueError, match="retry_after=3 and a Retry-After header"):
        ChaosHTTP().status(429, retry_after=3, headers={"Retry-After": "5"})


def test_undo_ends_the_http_rules_only(http_server: LocalServer) -> None:
    """``chaos_http.undo()`` ends its rules; the shared monkey's function faults stay."""
    monkey = ChaosMonkey(ChaosConfig(enabled=True, failure_rate=1.0), seed=1)
    chaos = ChaosHTTP(monkey)
    chaos.status(503)

    @monkey.chaos(error=KeyError)
    def lookup() -> None:
        return None

    chaos.undo()
    with chaos.client() as client:
        assert client.get(http_server.url("/text")).status_code == 200
    with pytest.raises(KeyError):
        lookup()
