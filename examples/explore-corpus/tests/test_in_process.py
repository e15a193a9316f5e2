"""Client libraries called in the test's process, their services as processes: the
explorer breaks their httpx requests, one endpoint at a time (and the processes)."""

import httpx
import pytest
from corpus.clients import Checkout, MailerDown, Notifier, Quota, QuotaUnavailable, RateLimited

from pytest_chaos import expect


@pytest.fixture
def mailer(start):
    return start("mailer")


@pytest.fixture
def quota(start):
    return start("quota")


def test_a_payment_is_charged_once(payments, chaos_explore):
    """BUG 2, revealed by ``read-timeout`` on ``POST payments/charges`` (the charge goes
    through, its answer is lost): checkout retries without an idempotency key and
    charges three times. The test says what any fault may do: no charge or one."""
    status = Checkout(payments.url).pay(order=7, amount=500)
    faults = chaos_explore.faulted("payments")
    if not faults:
        assert status == "paid"
        assert httpx.get(f"{payments.url}/charges").json()["count"] == 1
    elif any(fault.dependency.kind == "process" for fault in faults):
        assert status == "pending"  # payments itself is down: nothing was charged
    else:
        charges = httpx.get(f"{payments.url}/charges").json()["count"]
        assert charges <= 1, f"charged {charges} times for one order"


@pytest.mark.chaos(
    explore={"mailer": expect(raises=MailerDown, reason="sending fails, and says so")}
)
def test_mail_is_sent(mailer):
    """BUG 4, revealed by ``connect-error`` on ``POST mailer/mail`` (or ``kill`` of the
    mailer): the notifier retries an unreachable mailer for ever."""
    Notifier(mailer.url).send("ann@example.com", "hello")


def test_the_quota_is_read(quota, chaos_explore):
    """BUG 6, revealed by ``429`` on ``GET quota/quota``: the client asks again at once,
    five times, though the answer says to retry after a second. Every other fault is
    handled: the client says the quota is unavailable."""
    client = Quota(quota.url)
    if chaos_explore.faulted("quota", "429"):
        with pytest.raises(RateLimited) as limited:
            client.left()
        assert limited.value.retry_after == 1
        assert client.attempts == 1, f"{client.attempts} attempts despite Retry-After"
    elif chaos_explore.faulted("quota"):
        with pytest.raises(QuotaUnavailable):
            client.left()
    else:
        assert client.left() == 5
