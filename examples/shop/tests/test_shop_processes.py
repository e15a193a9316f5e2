"""Process faults with the ``service`` fixture: payments killed (the circuit breaker opens),
Redis paused (the cache is bypassed), the shop itself killed (its orders survive)."""

import httpx
import pytest

TEA = {"sku": "tea", "quantity": 1}


@pytest.mark.chaos(weight=8, hypothesis="with payments dead the circuit opens and orders wait")
def test_payments_killed_opens_the_circuit(payments, shop_client, eventually):
    """SIGKILL to payments: the first three orders fail their retries and open the
    breaker; from then on orders are taken at once (202, awaiting payment) without a
    request to payments. Once payments is back, the breaker lets a trial through after
    its 1 s reset timeout and orders are paid again."""
    assert shop_client.post("/orders", json=TEA).status_code == 201
    with payments.kill():  # started again, on the same port, when the block ends
        for _ in range(3):
            assert shop_client.post("/orders", json=TEA).status_code == 202
        stats = shop_client.get("/stats").json()["payments"]
        assert stats["breaker"] == "open"
        response = shop_client.post("/orders", json=TEA)
        assert response.status_code == 202
        assert "circuit open" in response.json()["note"]
        assert response.elapsed.total_seconds() < 0.25  # no request, no timeout: at once
        assert shop_client.get("/stats").json()["payments"]["requests"] == stats["requests"]
    eventually(lambda: shop_client.post("/orders", json=TEA).status_code == 201)
    assert shop_client.get("/stats").json()["payments"]["breaker"] == "closed"


@pytest.mark.chaos(weight=5, hypothesis="with Redis frozen pages come from the store, fast")
def test_redis_paused_bypasses_the_cache(redis, cached_client, eventually):
    """SIGSTOP to Redis: connections hang. Three reads time out (200 ms each), the cache's
    breaker opens, and later pages skip Redis altogether; every page answers. After
    SIGCONT the cache serves again."""
    cached_client.get("/products/tea")
    assert cached_client.get("/products/tea").json()["source"] == "cache"
    with redis.pause():
        pages = [cached_client.get("/products/tea") for _ in range(6)]
        assert [page.json()["source"] for page in pages] == ["store"] * 6
        cache = cached_client.get("/stats").json()["cache"]
        assert cache["breaker"] == "open"
        assert cache["bypassed"] >= 3
        assert max(page.elapsed.total_seconds() for page in pages[3:]) < 0.19  # no Redis timeout
    eventually(lambda: cached_client.get("/products/tea").json()["source"] == "cache")


@pytest.mark.chaos(weight=3, hypothesis="orders survive a crash of the shop")
def test_orders_survive_a_crash_of_the_shop(start_shop, tmp_path):
    """The shop killed with SIGKILL mid-life: clients are refused while it is down, and
    once it is started again every order it took is still there (SQLite on disk)."""
    shop = start_shop(db=tmp_path / "shop.db")
    taken = httpx.post(f"{shop.url}/orders", json=TEA).json()
    with shop.kill(), pytest.raises(httpx.ConnectError):
        httpx.get(f"{shop.url}/health")
    assert httpx.get(f"{shop.url}/orders/{taken['id']}").json() == taken
