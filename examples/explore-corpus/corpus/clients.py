"""Client libraries the tests call in their own process: they reach their services with
httpx, so the explorer breaks them in process, one HTTP endpoint at a time.

- :class:`Checkout` charges through payments (BUG 2: it retries a charge that may have
  gone through, without an idempotency key);
- :class:`Notifier` sends mail through the mailer (BUG 4: while the mailer is
  unreachable it retries for ever);
- :class:`Quota` reads what is left of a quota (BUG 6: a 429 is retried at once, five
  times, whatever its Retry-After says; other failures are handled).
"""

from __future__ import annotations

import time

import httpx


class Checkout:
    def __init__(self, payments_url: str) -> None:
        self.http = httpx.Client(base_url=payments_url, timeout=0.5)

    def pay(self, order: int, amount: int) -> str:
        """``paid``, or ``pending`` when payments cannot take the charge now."""
        for _ in range(3):
            try:
                # BUG 2: no Idempotency-Key: a retry after a lost answer charges again
                response = self.http.post("/charges", json={"amount": amount, "order": order})
            except httpx.TransportError:
                continue
            return "paid" if response.is_success else "pending"
        return "pending"


class MailerDown(Exception):
    """The mail could not be sent."""


class Notifier:
    def __init__(self, mailer_url: str) -> None:
        self.http = httpx.Client(base_url=mailer_url, timeout=1.0)

    def send(self, to: str, text: str) -> None:
        while True:
            try:
                response = self.http.post("/mail", json={"to": to, "text": text})
            except (httpx.ConnectError, httpx.ConnectTimeout):
                time.sleep(0.05)  # BUG 4: no limit; an unreachable mailer holds the caller
                continue
            except httpx.HTTPError as error:
                raise MailerDown(f"mail not sent: {type(error).__name__}") from error
            if not response.is_success:
                raise MailerDown(f"mail not sent: the mailer answered {response.status_code}")
            return


class QuotaUnavailable(Exception):
    """The quota could not be read."""


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited: retry after {retry_after} s")
        self.retry_after = retry_after


class Quota:
    def __init__(self, quota_url: str) -> None:
        self.http = httpx.Client(base_url=quota_url, timeout=0.5)
        self.attempts = 0

    def left(self) -> int:
        for _ in range(5):  # BUG 6: a 429 is tried again at once, Retry-After or not
            self.attempts += 1
            try:
                response = self.http.get("/quota")
                if response.status_code == 429:
                    continue
                response.raise_for_status()
                return int(response.json()["left"])
            except (httpx.HTTPError, ValueError, KeyError) as error:
                raise QuotaUnavailable(f"quota unavailable: {type(error).__name__}") from error
        raise RateLimited(float(response.headers.get("retry-after", 1)))
