"""In-process faults: the shop runs inside the test process (uvicorn on a thread) with its
real payments service, so ``chaos_http`` can break its outgoing HTTP client and
``chaos_monkey`` its own functions."""

import sqlite3
import threading

import httpx
import pytest

TEA = {"sku": "tea", "quantity": 1}


@pytest.fixture
def in_process_shop(payments, chaos_http):
    """The shop's app in this process, its payments client's transport under
    ``chaos_http``'s rules; payments is the real process, reached directly."""
    import uvicorn
    from shopapp.app import Settings, create_app

    app = create_app(Settings(payments_url=payments.url), payments_transport=chaos_http.transport())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.01)  # until uvicorn listens
    port = server.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        yield client
    server.should_exit = True
    thread.join(5)


def charges(payments) -> int:
    return httpx.get(f"{payments.url}/charges").json()["count"]


@pytest.mark.chaos(weight=3, hypothesis="two 503s from payments are retried away")
def test_503s_from_payments_are_retried(chaos_http, chaos_monkey, in_process_shop, payments):
    """The first two charge requests answer 503 (they never reach payments): tenacity
    retries, the third goes through, and the customer never knows."""
    chaos_http.status(503, path="/charges", method="POST", first=2)
    response = in_process_shop.post("/orders", json=TEA)
    assert response.status_code == 201
    assert [injection.kind for injection in chaos_monkey.injections] == ["status", "status"]
    assert charges(payments) == 1


@pytest.mark.chaos(weight=8, hypothesis="a lost answer is retried without charging twice")
def test_a_lost_answer_is_not_charged_twice(chaos_http, in_process_shop, payments):
    """The worst timeout: the charge reaches payments, which makes it, and the answer is
    lost (``read_timeout(delivered=True)``). The client retries; the order id is the
    idempotency key, so payments answers the same charge instead of making a second."""
    chaos_http.read_timeout(delivered=True, path="/charges", first=1)
    response = in_process_shop.post("/orders", json=TEA)
    assert response.status_code == 201
    assert charges(payments) == 1  # one charge, not two


@pytest.mark.chaos(weight=3, hypothesis="a locked database answers 503 with Retry-After, not 500")
def test_a_locked_store_asks_clients_to_retry(chaos_monkey, in_process_shop):
    """The monkey makes the store's first insert fail as a locked SQLite database does:
    the shop answers 503 with Retry-After (a client can retry), and the next order works."""
    chaos_monkey.patch(
        "shopapp.store.OrderStore.add",
        error=sqlite3.OperationalError("database is locked"),
        first=1,
    )
    refused = in_process_shop.post("/orders", json=TEA)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert "database is locked" in refused.json()["error"]
    assert in_process_shop.post("/orders", json=TEA).status_code == 201
    assert chaos_monkey.stats()["failures_injected"] == 1
