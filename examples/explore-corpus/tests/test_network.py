"""Services under test as processes, their dependencies through proxies: the explorer
breaks the links (and the processes behind them)."""

import httpx
import pytest

from pytest_chaos import expect


def charged_at_most_once(payments):
    """At most one charge for the order (a payments process that is down made none)."""
    return not payments.running or httpx.get(f"{payments.url}/charges").json()["count"] <= 1


@pytest.mark.chaos(
    explore={
        "inventory": expect(503, reason="no stock to check: the order is refused, to retry"),
        "payments": expect(202, check=charged_at_most_once, reason="the order waits for payment"),
    }
)
def test_an_order_is_paid(orders, client):
    """BUG 1, revealed by ``blackhole`` on the inventory link (or ``pause`` of its
    process): orders calls inventory without a timeout, and hangs with it. Payments is
    handled: every fault on it leaves the order waiting for payment, charged at most once."""
    response = client(orders).post("/orders", json={"sku": "tea"})
    assert response.status_code == 201
    assert response.json()["status"] == "paid"


@pytest.mark.chaos(explore={"users": expect(503, reason="no profile rather than another's")})
def test_a_profile_belongs_to_its_user(profile, client):
    """BUG 3, revealed by ``down`` on the users link (and every fault that makes users
    fail): the fallback serves the last profile it served, alice's, to bob."""
    response = client(profile).get("/profile/bob")
    assert response.status_code == 200
    assert response.json()["name"] == "Bob"


@pytest.mark.chaos(explore={"search": expect(503, reason="an error, not an empty catalog")})
def test_the_catalog_lists_what_search_finds(catalog, client):
    """BUG 5, revealed by ``down`` on the search link: the failure is answered as 200
    with no items. Pricing is handled: without it the items show, without a price."""
    response = client(catalog).get("/catalog", params={"q": "tea"})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 3


@pytest.mark.chaos(explore={"replica": expect(503, reason="an error when no store answers")})
def test_a_balance_is_read(accounts, client):
    """BUG 7, revealed only by a combination, ``down`` on the primary's link and on the
    replica's: each alone is handled (the other answers); with both, the balance is 0."""
    response = client(accounts).get("/accounts/7")
    assert response.status_code == 200
    assert response.json()["balance"] == 100
