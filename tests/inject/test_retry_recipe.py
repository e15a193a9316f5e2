"""The retry recipe (docs/inject-retry-recipe.md): code under test that retries with tenacity
(:mod:`.shop_client`) meets HTTP faults from ``chaos_http`` and a real server, and the
retries behave as a user expects: how many attempts, how long between them, Retry-After
honoured, a clear error when they give up.

Times are monotonic and checked from below only: a wait may run long, never short."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import tenacity

from pytest_chaos.inject import ChaosHTTP

from . import shop_client
from .conftest import LocalServer
from .shop_client import fetch_order, fetch_order_async, retry_policy

ROOT = Path(__file__).resolve().parents[2]
#: The first wait of the tests' policy; it doubles after each failure.
BACKOFF_S = 0.05
ORDER = {"id": "17", "status": "shipped"}


@dataclass
class Attempts:
    """What tenacity did, from its callbacks: when each attempt began, and each wait it
    chose before the next."""

    started: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def before(self, state: tenacity.RetryCallState) -> None:
        self.started.append(time.monotonic())

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        assert state.next_action is not None
        self.waits.append(state.next_action.sleep)

    def policy(self, **settings: Any) -> dict[str, Any]:
        """The shop's policy with the tests' short backoff, reporting here."""
        settings.setdefault("backoff_s", BACKOFF_S)
        return retry_policy(before=self.before, before_sleep=self.before_sleep, **settings)

    @property
    def gaps(self) -> list[float]:
        """Seconds from the start of each attempt to the start of the next."""
        return [later - earlier for earlier, later in pairwise(self.started)]


@pytest.fixture
def attempts() -> Attempts:
    return Attempts()


@pytest.fixture
def client(chaos_http: ChaosHTTP, http_server: LocalServer) -> httpx.Client:
    """The application's client for the shop, through ``chaos_http``'s rules (closed at
    teardown by the fixture)."""
    return chaos_http.client(base_url=http_server.origin, timeout=5)


def test_503_twice_then_success_on_the_third_attempt(
    chaos_http: ChaosHTTP, client: httpx.Client, http_server: LocalServer, attempts: Attempts
) -> None:
    chaos_http.status(503, first=2)
    retrying = tenacity.Retrying(**attempts.policy(attempts=4))

    assert fetch_order(client, "17", retrying=retrying) == ORDER

    assert len(attempts.started) == retrying.statistics["attempt_number"] == 3
    assert http_server.hits("/orders/17") == 1  # the two 503s never reached it
    assert [(i.kind, i.call) for i in chaos_http.injections] == [("status", 1), ("status", 2)]


def test_backoff_doubles_and_is_respected(
    chaos_http: ChaosHTTP, client: httpx.Client, attempts: Attempts
) -> None:
    """Without Retry-After, tenacity waits 0.05 s, then 0.1 s, then 0.2 s, and each gap
    between attempts is at least that long."""
    chaos_http.status(503, first=3)
    assert fetch_order(client, "17", retrying=tenacity.Retrying(**attempts.policy())) == ORDER
    assert attempts.waits == [BACKOFF_S, 2 * BACKOFF_S, 4 * BACKOFF_S]
    assert all(gap >= wait for gap, wait in zip(attempts.gaps, attempts.waits, strict=True))


def test_retry_after_is_honoured(
    chaos_http: ChaosHTTP, client: httpx.Client, http_server: LocalServer, attempts: Attempts
) -> None:
    """A 429 with ``Retry-After: 1``: the second attempt comes a second later at the
    earliest, not after the 0.05 s backoff."""
    chaos_http.status(429, retry_after=1, first=1)
    assert fetch_order(client, "17", retrying=tenacity.Retrying(**attempts.policy())) == ORDER
    assert attempts.waits == [1.0]
    [gap] = attempts.gaps
    assert gap >= 1.0
    assert http_server.hits("/orders/17") == 1
    assert chaos_http.injections[0].details == {"status": 429, "retry_after": "1"}


def test_retry_after_is_capped(
    chaos_http: ChaosHTTP, client: httpx.Client, attempts: Attempts
) -> None:
    """A server asking for an hour does not stall the client past ``max_wait_s``."""
    chaos_http.status(503, retry_after=3600, first=1)
    retrying = tenacity.Retrying(**attempts.policy(max_wait_s=0.2))
    assert fetch_order(client, "17", retrying=retrying) == ORDER
    assert attempts.waits == [0.2]
    assert attempts.gaps[0] >= 0.2


def test_a_lasting_outage_gives_up_after_the_last_attempt(
    chaos_http: ChaosHTTP, client: httpx.Client, http_server: LocalServer, attempts: Attempts
) -> None:
    """After ``attempts`` tries the caller gets the last error itself: a 503 it can read."""
    chaos_http.status(503)
    retrying = tenacity.Retrying(**attempts.policy(attempts=3))
    with pytest.raises(httpx.HTTPStatusError, match="503 Service Unavailable") as raised:
        fetch_order(client, "17", retrying=retrying)
    assert raised.value.response.status_code == 503
    assert raised.value.response.headers["x-chaos-fault"] == "status"
    assert len(attempts.started) == retrying.statistics["attempt_number"] == 3
    assert attempts.waits == [BACKOFF_S, 2 * BACKOFF_S]  # none after the last
    assert [i.call for i in chaos_http.injections] == [1, 2, 3]
    assert http_server.hits() == 0


def test_without_reraise_the_caller_gets_a_retry_error(
    chaos_http: ChaosHTTP, client: httpx.Client, attempts: Attempts
) -> None:
    chaos_http.connect_error()
    retrying = tenacity.Retrying(**attempts.policy(attempts=2, reraise=False))
    with pytest.raises(tenacity.RetryError) as raised:
        fetch_order(client, "17", retrying=retrying)
    last = raised.value.last_attempt
    assert last.attempt_number == 2
    assert isinstance(last.exception(), httpx.ConnectError)


def test_not_found_is_not_retried(
    chaos_http: ChaosHTTP, client: httpx.Client, http_server: LocalServer
) -> None:
    """A 404 is an answer, not an outage: one attempt (the shop's own policy, whose
    backoff would be long), and the caller sees it at once."""
    with pytest.raises(httpx.HTTPStatusError, match="404 Not Found"):
        fetch_order(client, "missing")
    assert http_server.hits("/orders/missing") == 1
    assert fetch_order(client, "17") == ORDER  # the default policy, no fault: one try


@pytest.mark.parametrize(
    ("add_fault", "server_hits"),
    [
        pytest.param(lambda chaos: chaos.connect_error(first=1), 1, id="connect_error"),
        pytest.param(lambda chaos: chaos.read_timeout(after_s=0.05, first=1), 1, id="read_timeout"),
        pytest.param(lambda chaos: chaos.truncate(5, first=1), 2, id="truncate"),
        pytest.param(lambda chaos: chaos.status(500, first=1), 1, id="status_500"),
        pytest.param(lambda chaos: chaos.latency(50, first=1), 1, id="latency"),
    ],
)
def test_one_transient_fault_then_success(
    chaos_http: ChaosHTTP,
    client: httpx.Client,
    http_server: LocalServer,
    attempts: Attempts,
    add_fault: Any,
    server_hits: int,
) -> None:
    """A refused connection, a read timeout, a cut-off body or a 500 costs one retry; a
    delay costs none. A truncated body did reach the server, so it was hit twice."""
    add_fault(chaos_http)
    assert fetch_order(client, "17", retrying=tenacity.Retrying(**attempts.policy())) == ORDER
    expected_attempts = 1 if chaos_http.injections[0].kind == "latency" else 2
    assert len(attempts.started) == expected_attempts
    assert attempts.waits == [BACKOFF_S] * (expected_attempts - 1)
    assert http_server.hits("/orders/17") == server_hits


def test_async_503_twice_then_success(
    chaos_http: ChaosHTTP, http_server: LocalServer, attempts: Attempts
) -> None:
    chaos_http.status(503, first=2)
    retrying = tenacity.AsyncRetrying(**attempts.policy())

    async def main() -> dict[str, Any]:
        async with chaos_http.async_client(base_url=http_server.origin, timeout=5) as client:
            return await fetch_order_async(client, "17", retrying=retrying)

    assert asyncio.run(main()) == ORDER
    assert len(attempts.started) == retrying.statistics["attempt_number"] == 3
    assert attempts.waits == [BACKOFF_S, 2 * BACKOFF_S]
    assert all(gap >= wait for gap, wait in zip(attempts.gaps, attempts.waits, strict=True))
    assert http_server.hits("/orders/17") == 1


def test_async_retry_after_then_connect_error_then_success(
    chaos_http: ChaosHTTP, http_server: LocalServer, attempts: Attempts
) -> None:
    """Rules apply in order: attempt 1 meets the 429, attempt 2 (the 429 used up) the
    refused connection, attempt 3 the server. Retry-After sets the first wait, the
    backoff the second."""
    chaos_http.status(429, retry_after=1, first=1)
    chaos_http.connect_error(first=1)
    retrying = tenacity.AsyncRetrying(**attempts.policy())

    async def main() -> dict[str, Any]:
        async with chaos_http.async_client(base_url=http_server.origin, timeout=5) as client:
            return await fetch_order_async(client, "17", retrying=retrying)

    assert asyncio.run(main()) == ORDER
    assert [i.kind for i in chaos_http.injections] == ["status", "connect_error"]
    assert attempts.waits == [1.0, 2 * BACKOFF_S]
    assert all(gap >= wait for gap, wait in zip(attempts.gaps, attempts.waits, strict=True))
    assert http_server.hits("/orders/17") == 1


def test_async_lasting_outage_gives_up(
    chaos_http: ChaosHTTP, http_server: LocalServer, attempts: Attempts
) -> None:
    chaos_http.connect_error()
    retrying = tenacity.AsyncRetrying(**attempts.policy(attempts=3))

    async def main() -> None:
        async with chaos_http.async_client(base_url=http_server.origin) as client:
            await fetch_order_async(client, "17", retrying=retrying)

    with pytest.raises(httpx.ConnectError):
        asyncio.run(main())
    assert len(attempts.started) == 3
    assert http_server.hits() == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), (" 0 ", 0.0), ("soon", None), ("-1", None), ("1.5", None), (None, None)],
)
def test_retry_after_header_parsing(header: str | None, expected: float | None) -> None:
    headers = {"retry-after": header} if header is not None else {}
    assert shop_client.retry_after_s(httpx.Response(503, headers=headers)) == expected


def test_retry_after_header_as_an_http_date() -> None:
    past = httpx.Response(503, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert shop_client.retry_after_s(past) == 0.0
    future = httpx.Response(503, headers={"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert (shop_client.retry_after_s(future) or 0) > 3600


# -- the page shows this code ------------------------------------------------------------


def page_blocks() -> list[str]:
    page = (ROOT / "docs" / "inject-retry-recipe.md").read_text()
    return re.findall(r"```python\n(.*?)```", page, re.S)


def test_the_page_shows_the_code_under_test() -> None:
    """The recipe on the page is this folder's shop_client.py, character for character."""
    assert page_blocks()[0] == Path(shop_client.__file__).read_text()


def test_the_pages_tests_are_these_tests() -> None:
    """Every test the page shows is in this module, as written."""
    source = Path(__file__).read_text()
    shown = [block for block in page_blocks()[1:] if "def test_" in block]
    assert shown
    for block in shown:
        for part in re.split(r"\n\n\n", block.strip()):
            assert part in source, part
