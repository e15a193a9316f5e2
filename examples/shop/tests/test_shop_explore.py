"""Functional tests of the shop, written to be explored (``pytest --chaos-explore``, see
docs/explore.md): each says what the shop does when nothing fails, and its marker what a
fault of a dependency may make it do instead."""

import httpx
import pytest

from pytest_chaos import expect

TEA = {"sku": "tea", "quantity": 1}


def charged_at_most_once(payments):
    """No order is charged twice (a payments process that is down charged nothing)."""
    if not payments.running:
        return True
    return httpx.get(f"{payments.url}/charges").json()["count"] <= 1


WAITS_FOR_PAYMENT = expect(202, check=charged_at_most_once, reason="the order waits for payment")


@pytest.mark.chaos(explore={"payments": WAITS_FOR_PAYMENT})
def test_an_order_is_paid(shop_client):
    response = shop_client.post("/orders", json=TEA)
    assert response.status_code == 201
    assert response.json()["status"] == "paid"


def test_a_product_page_shows(cached_client):
    page = cached_client.get("/products/tea")
    assert page.status_code == 200
    assert page.json()["sku"] == "tea"


@pytest.mark.chaos(explore={"payments": WAITS_FOR_PAYMENT})
def test_the_naive_shop_takes_orders(start_shop):
    """The naive shop's payments client has no timeout (``SHOP_NAIVE=1``); this test's
    client waits as long as the shop does."""
    naive = start_shop(naive="1")
    with httpx.Client(base_url=naive.url, timeout=None) as client:
        response = client.post("/orders", json=TEA)
    assert response.status_code == 201
