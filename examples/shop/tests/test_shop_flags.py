"""Feature flags over OFREP: the ``live-payments`` kill switch, flipped while the shop runs,
and the shop's fallback when its flag server is unreachable."""

import httpx
import pytest

TEA = {"sku": "tea", "quantity": 1}


def charges(payments) -> int:
    return httpx.get(f"{payments.url}/charges").json()["count"]


@pytest.mark.chaos(weight=5, hypothesis="the kill switch stops charging at once, and is undone")
def test_the_kill_switch_stops_charging(flags, start_shop, payments):
    """Operators kill ``live-payments`` (here through the OFREP server's admin API, as a
    game-day plan would): the very next order is taken without a charge; reviving the
    flag brings charging back."""
    flags.store.define("live-payments", kind="ops")  # on for everyone
    shop = start_shop(flags_url=flags.url)
    with httpx.Client(base_url=shop.url, timeout=5) as client:
        assert client.post("/orders", json=TEA).json()["status"] == "paid"
        httpx.post(f"{flags.url}/admin/kill", json={"flag": "live-payments"})
        taken = client.post("/orders", json=TEA)
        assert taken.status_code == 202
        assert taken.json()["note"] == "payments switched off"
        assert charges(payments) == 1  # no charge for the second order
        flags.store.revive("live-payments")  # the same, from the test's side
        assert client.post("/orders", json=TEA).json()["status"] == "paid"
    assert charges(payments) == 2


@pytest.mark.chaos(weight=3, hypothesis="with its flag server down the shop keeps its defaults")
def test_an_unreachable_flag_server_means_defaults(flags, toxiproxy, start_shop):
    """The flag server behind a proxy, taken down: the OpenFeature client answers the
    flag's default (payments on) after its 300 ms timeout at worst, and orders are paid."""
    flags.store.define("live-payments", strategy="none")  # switched off...
    link = toxiproxy.proxy("flags", upstream=flags.url.removeprefix("http://"))
    shop = start_shop(flags_url=f"http://{link.listen}")
    with httpx.Client(base_url=shop.url, timeout=5) as client:
        assert client.post("/orders", json=TEA).status_code == 202  # ...as the server says
        with link.down():
            response = client.post("/orders", json=TEA)
        assert response.json()["status"] == "paid"  # the default, while it cannot be read
        assert response.elapsed.total_seconds() < 1.0
