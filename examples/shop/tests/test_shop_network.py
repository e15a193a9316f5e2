"""Network faults on the shop's dependencies, through the embedded Toxiproxy-compatible proxy:
latency, down, reset_peer on payments; latency, bandwidth and limit_data on Redis."""

import pytest

TEA = {"sku": "tea", "quantity": 2}


@pytest.mark.chaos(weight=3, hypothesis="orders are paid while payments is 150 ms slower")
def test_orders_are_paid_through_a_slow_payments_link(payments_link, shop_client):
    """Latency within the client's 300 ms timeout: slower, but every order is paid."""
    with payments_link.latency(ms=150):
        response = shop_client.post("/orders", json=TEA)
    assert response.status_code == 201
    assert response.json()["status"] == "paid"
    assert response.elapsed.total_seconds() >= 0.15


@pytest.mark.chaos(weight=5, hypothesis="orders are kept, awaiting payment, while payments is down")
def test_orders_wait_for_payment_while_payments_is_down(payments_link, shop_client, eventually):
    """The proxy down: connections are refused, the retries give up, the order is kept
    (202, awaiting payment) rather than lost or answered with a 500. Once the link is back,
    orders are paid again."""
    with payments_link.down():
        response = shop_client.post("/orders", json=TEA)
        assert response.status_code == 202
        assert response.json()["status"] == "awaiting_payment"
        assert "ConnectError" in response.json()["note"]
    assert shop_client.get(f"/orders/{response.json()['id']}").json()["status"] == (
        "awaiting_payment"
    )
    eventually(lambda: shop_client.post("/orders", json=TEA).status_code == 201)


@pytest.mark.chaos(weight=3, hypothesis="a reset connection is retried, then the order waits")
def test_reset_connections_are_retried_then_the_order_waits(payments_link, shop, shop_client):
    """Every connection to payments is reset (TCP RST) as soon as data flows: the client
    retries (3 attempts), then gives up cleanly."""
    before = shop_client.get("/stats").json()["payments"]["requests"]
    with payments_link.reset_peer(ms=0):
        response = shop_client.post("/orders", json=TEA)
    assert response.status_code == 202
    assert "payments failed" in response.json()["note"]
    assert shop_client.get("/stats").json()["payments"]["requests"] - before == 3
    assert shop_client.post("/orders", json=TEA).status_code == 201


@pytest.mark.chaos(weight=3, hypothesis="product pages come from the store while Redis is slow")
def test_a_slow_redis_is_bypassed(redis_link, cached_client, eventually):
    """300 ms of latency on Redis, above the cache's 200 ms timeout: pages still answer,
    from the store, well within a second."""
    cached_client.get("/products/tea")  # fills the cache
    assert cached_client.get("/products/tea").json()["source"] == "cache"
    with redis_link.latency(ms=300):
        page = cached_client.get("/products/tea")
    assert page.json()["source"] == "store"
    assert page.elapsed.total_seconds() < 1.0
    assert cached_client.get("/stats").json()["cache"]["errors"] >= 1
    eventually(lambda: cached_client.get("/products/tea").json()["source"] == "cache")


@pytest.mark.chaos(weight=2, hypothesis="a thin pipe to Redis slows big pages, which arrive whole")
def test_a_thin_pipe_to_redis_slows_big_pages(redis_link, cached_client):
    """Redis limited to 100 kB/s: the 50 kB teapot page now takes about half a second,
    and still comes from the cache, whole. A lesson as much as a test: the cache's 200 ms
    socket timeout bounds each read, not the answer, and a trickle (the proxy sends every
    100 ms) never trips it. A deadline on the whole call would need more than a timeout."""
    fresh = cached_client.get("/products/teapot").json()  # fills the cache
    with redis_link.bandwidth(kb_per_s=100):
        page = cached_client.get("/products/teapot")
    assert page.json() == {**fresh, "source": "cache"}
    assert len(page.content) > 50_000
    assert 0.3 < page.elapsed.total_seconds() < 3.0


@pytest.mark.chaos(weight=3, hypothesis="an answer cut short by Redis is a miss, not an error")
def test_answers_cut_short_by_redis_are_misses(redis_link, cached_client):
    """Redis connections closed after 1000 bytes (limit_data): the 50 kB cached page is
    cut short, the cache counts an error and the page comes from the store, intact."""
    fresh = cached_client.get("/products/teapot").json()
    assert cached_client.get("/products/teapot").json()["source"] == "cache"
    with redis_link.limit_data(bytes=1000):
        page = cached_client.get("/products/teapot")
    assert page.status_code == 200
    assert page.json() == {**fresh, "source": "store"}
    assert cached_client.get("/stats").json()["cache"]["errors"] >= 1
