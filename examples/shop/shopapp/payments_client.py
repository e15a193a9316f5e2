"""The shop's client for the payments service: timeout, retries, circuit breaker.

- every attempt has a timeout (``timeout``); the naive client (``naive=True``) has none;
- transient failures (connection refused or reset, timeouts, 5xx, 429) are retried with
  tenacity, at most ``attempts`` times and within ``budget_s`` seconds, with exponential
  backoff; the order id is the idempotency key, so a retry never charges twice;
- a pybreaker circuit breaker opens after ``fail_max`` failed charges in a row: while it is
  open, charges fail at once, without a request, until ``reset_timeout_s`` has passed.
"""

from typing import Any

import httpx
import pybreaker
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)


class PaymentUnavailable(Exception):
    """The charge could not be made now; the order waits for payment."""


def transient(error: BaseException) -> bool:
    if isinstance(error, httpx.TransportError):  # refused, reset, timed out, cut short
        return True
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500 or error.response.status_code == 429
    return False


class PaymentsClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 0.3,
        attempts: int = 3,
        budget_s: float = 0.4,
        fail_max: int = 3,
        reset_timeout_s: float = 1.0,
        naive: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url, timeout=None if naive else timeout, transport=transport
        )
        self.retrying = Retrying(
            stop=stop_after_attempt(attempts) | stop_after_delay(budget_s),
            wait=wait_exponential(multiplier=0.02, max=0.1),
            retry=retry_if_exception(transient),
            reraise=True,
        )
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout_s, name="payments"
        )
        self.requests = 0  # attempts sent, retries included

    def charge(self, order_id: int, amount: int) -> dict[str, Any]:
        """Charges ``amount`` cents for the order, or raises ``PaymentUnavailable``."""
        try:
            # not breaker.call(): it holds the breaker's lock for the whole call, so
            # concurrent charges would queue behind a slow one (the experiment found it)
            with self.breaker.calling():
                return self.retrying(self._charge_once, order_id, amount)
        except pybreaker.CircuitBreakerError as error:
            raise PaymentUnavailable(f"payments circuit open: {error}") from error
        except httpx.HTTPError as error:
            raise PaymentUnavailable(f"payments failed: {type(error).__name__}") from error

    def _charge_once(self, order_id: int, amount: int) -> dict[str, Any]:
        self.requests += 1
        response = self.http.post(
            "/charges", json={"amount": amount}, headers={"Idempotency-Key": f"order-{order_id}"}
        )
        response.raise_for_status()
        charge: dict[str, Any] = response.json()
        return charge

    @property
    def state(self) -> str:
        return self.breaker.current_state  # "closed", "open" or "half-open"
