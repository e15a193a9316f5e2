"""The shop's order client: code under test that retries with tenacity.

It retries what is worth retrying (no answer at all, or a 429/5xx answer), stops after a
number of attempts, and between attempts waits what the server's Retry-After asks, or else
an exponential backoff. docs/inject-retry-recipe.md shows this file as the recipe.
"""

from __future__ import annotations

import email.utils
import time
from datetime import timezone
from typing import Any

import httpx
import tenacity

#: Answers that mean "not now": rate limited, or the server is failing or overloaded.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_retryable(error: BaseException) -> bool:
    """Whether a failed attempt is worth another: no answer (refused, timed out, cut
    off), or an answer in :data:`RETRY_STATUSES`. A 404 is final."""
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, httpx.HTTPStatusError) and (
        error.response.status_code in RETRY_STATUSES
    )


def retry_after_s(response: httpx.Response) -> float | None:
    """The wait a response's ``Retry-After`` asks for, in seconds (the header gives
    seconds or an HTTP date); None without a usable one."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


class wait_retry_after(tenacity.wait.wait_base):
    """Wait what the failed answer's ``Retry-After`` asks (at most ``max_s``); without
    one, wait as ``fallback`` says."""

    def __init__(self, fallback: tenacity.wait.wait_base, max_s: float = 30.0) -> None:
        self.fallback = fallback
        self.max_s = max_s

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, httpx.HTTPStatusError):
            asked = retry_after_s(error.response)
            if asked is not None:
                return min(asked, self.max_s)
        return self.fallback(retry_state)


def retry_policy(
    *, attempts: int = 4, backoff_s: float = 0.5, max_wait_s: float = 30.0, **hooks: Any
) -> dict[str, Any]:
    """The shop's policy as tenacity's arguments, for ``Retrying`` and ``AsyncRetrying``
    alike: ``attempts`` tries in all; between them, Retry-After or else ``backoff_s``,
    doubled after each failure, never more than ``max_wait_s``. ``hooks`` (``before=``,
    ``before_sleep=``...) go to tenacity as they are. When it gives up, the last error
    is raised as it is (``reraise``), not wrapped in a ``RetryError``."""
    return {
        "retry": tenacity.retry_if_exception(is_retryable),
        "stop": tenacity.stop_after_attempt(attempts),
        "wait": wait_retry_after(
            tenacity.wait_exponential(multiplier=backoff_s, max=max_wait_s), max_s=max_wait_s
        ),
        "reraise": True,
        **hooks,
    }


def fetch_order(
    client: httpx.Client, order_id: str, *, retrying: tenacity.Retrying | None = None
) -> dict[str, Any]:
    """The order ``order_id``, from ``GET /orders/<id>``, retried as ``retrying`` says
    (the shop's policy by default)."""
    policy = retrying if retrying is not None else tenacity.Retrying(**retry_policy())
    return policy(_get_order, client, order_id)


async def fetch_order_async(
    client: httpx.AsyncClient,
    order_id: str,
    *,
    retrying: tenacity.AsyncRetrying | None = None,
) -> dict[str, Any]:
    """:func:`fetch_order` for an ``httpx.AsyncClient``."""
    policy = retrying if retrying is not None else tenacity.AsyncRetrying(**retry_policy())
    return await policy(_get_order_async, client, order_id)


def _get_order(client: httpx.Client, order_id: str) -> dict[str, Any]:
    response = client.get(f"/orders/{order_id}")
    response.raise_for_status()  # 4xx and 5xx become httpx.HTTPStatusError
    order: dict[str, Any] = response.json()
    return order


async def _get_order_async(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/orders/{order_id}")
    response.raise_for_status()
    order: dict[str, Any] = response.json()
    return order
