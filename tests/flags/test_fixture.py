"""The ``flags`` fixture, and chaos on the flag plane: a service that reads its flags over
OFREP keeps its steady state when the flag server is slow, then down; a kill switch flipped
mid-canary overrides the canary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_chaos.flags.store import FlagConfigError
from pytest_chaos.plugin.flags import Flags
from pytest_chaos.proxy.tracked import ChaosToxiproxy

CHECKOUT = {
    "name": "new-checkout",
    "enabled": True,
    "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "100"}}],
}


def flag_of(url: str, key: str, user: str, timeout: float) -> bool:
    """What a service does: ask the OFREP server, and fall back to off on any failure."""
    try:
        answer = httpx.post(
            f"{url}/ofrep/v1/evaluate/flags/{key}",
            json={"context": {"targetingKey": user}},
            timeout=timeout,
        )
        return bool(answer.json().get("value", False)) if answer.status_code == 200 else False
    except httpx.HTTPError:
        return False


def test_flags_are_fresh_loaded_and_served(flags: Flags, tmp_path: Path) -> None:
    assert len(flags.store) == 0
    document = tmp_path / "flags.json"
    document.write_text(json.dumps({"features": [CHECKOUT]}))
    flags.load(document)
    assert flags.store.is_enabled("new-checkout", {"userId": "1"})
    assert flag_of(flags.url, "new-checkout", "1", timeout=2)
    assert flags.url.startswith("http://127.0.0.1:")
    with pytest.raises(FlagConfigError, match="flags file"):
        flags.load(tmp_path / "missing.json")


def test_a_gradual_rollout_moves_with_the_fixture_clock(flags: Flags) -> None:
    now = flags.clock.now()
    flags.store.define("search", strategy="gradual", start=now, end=now + 3600)
    users = [{"userId": str(n)} for n in range(1000)]
    before = sum(flags.store.is_enabled("search", user) for user in users)
    flags.clock.advance(1800)
    halfway = sum(flags.store.is_enabled("search", user) for user in users)
    flags.clock.advance(1800)
    after = sum(flags.store.is_enabled("search", user) for user in users)
    assert before == 0 and 400 < halfway < 600 and after == 1000


def test_a_slow_then_down_flag_server_falls_back_without_losing_steady_state(
    flags: Flags, toxiproxy: ChaosToxiproxy
) -> None:
    """The OFREP server behind a proxy: with 300 ms latency and a 100 ms client timeout the
    service answers with the default (off), and keeps answering; with the proxy down,
    likewise; when the fault ends, the flag is read again."""
    flags.load({"features": [CHECKOUT]})
    link = toxiproxy.proxy("flags", upstream=flags.url.removeprefix("http://"))
    via = f"http://{link.listen}"
    assert flag_of(via, "new-checkout", "7", timeout=1)
    with link.latency(ms=300):
        assert [flag_of(via, "new-checkout", "7", timeout=0.1) for _ in range(3)] == [False] * 3
    with link.down():
        assert flag_of(via, "new-checkout", "7", timeout=0.5) is False
    assert flag_of(via, "new-checkout", "7", timeout=1)


def test_the_kill_switch_overrides_a_canary_at_once(flags: Flags) -> None:
    flags.load({"features": [CHECKOUT]})
    flags.store.enable("new-checkout", percentage=25)
    users = [{"userId": str(n)} for n in range(400)]
    assert 50 < sum(flags.store.is_enabled("new-checkout", u) for u in users) < 150
    flags.store.kill("new-checkout")
    assert not any(flags.store.is_enabled("new-checkout", u) for u in users)
    assert not flag_of(flags.url, "new-checkout", "1", timeout=2)
    flags.store.revive("new-checkout")
    assert 50 < sum(flags.store.is_enabled("new-checkout", u) for u in users) < 150


def test_an_openfeature_client_falls_back_with_reason_error_when_the_flag_plane_breaks(
    flags: Flags, toxiproxy: ChaosToxiproxy
) -> None:
    """The real OFREP provider reading the flags through a proxy: slow (300 ms against its
    100 ms timeout), then down, it answers the default with reason ERROR; once the fault
    ends it answers the flag again."""
    from openfeature import api
    from openfeature.contrib.provider.ofrep import OFREPProvider
    from openfeature.flag_evaluation import Reason
    from openfeature.provider.no_op_provider import NoOpProvider

    flags.load({"features": [CHECKOUT]})
    link = toxiproxy.proxy("flags", upstream=flags.url.removeprefix("http://"))
    api.set_provider(OFREPProvider(f"http://{link.listen}", timeout=0.1), domain="flag-plane")
    client = api.get_client(domain="flag-plane")
    try:
        assert client.get_boolean_details("new-checkout", False).value is True
        with link.latency(ms=300):
            slow = client.get_boolean_details("new-checkout", False)
        assert (slow.value, slow.reason) == (False, Reason.ERROR)
        with link.down():
            down = client.get_boolean_details("new-checkout", False)
        assert (down.value, down.reason) == (False, Reason.ERROR)
        healed = client.get_boolean_details("new-checkout", False)
        assert (healed.value, healed.reason) == (True, Reason.STATIC)
    finally:  # leave the global API as other tests expect it: only this domain was touched
        api.set_provider(NoOpProvider(), domain="flag-plane")


def test_a_service_keeps_its_steady_state_while_its_flag_server_is_slow_then_down(
    flags: Flags, toxiproxy: ChaosToxiproxy, service: Any, chaos: Any
) -> None:
    """An experiment on the flag plane: a service process that reads its flag over OFREP
    (through a proxy) answers every request while the flag server is 300 ms slow, then
    down; it falls back to the old checkout meanwhile and reads the flag again after."""
    import sys

    from pytest_chaos import faults, probes
    from pytest_chaos.steady.load import Load

    flags.load({"features": [CHECKOUT]})
    link = toxiproxy.proxy("flags", upstream=flags.url.removeprefix("http://"))
    app = service.process(
        "checkout",
        [sys.executable, str(Path(__file__).with_name("flagapp.py")), "--port", "{port}"],
        env={"FLAGS_URL": f"http://{link.listen}"},
        ready=probes.http("/health"),
    )
    checkout = f"{app.url}/checkout?user=7"
    assert httpx.get(checkout, timeout=2).text == "new"
    journal = chaos.experiment(
        "checkout answers whatever the flag plane does",
        steady_state=[
            probes.http(checkout, status=200, latency_ms_max=1000, name="checkout"),
            probes.slo(error_rate_max=0.0, min_samples=5),
        ],
        method=[
            faults.latency("flags", ms=300, for_s=1.0),
            faults.down("flags", start_after_s=1.2, for_s=1.0),
        ],
        load=Load.http(checkout, rps=20, duration_s=60, timeout=2),
        strategy="continuously",
    )
    assert journal["status"] == "completed" and not journal["deviated"]
    assert httpx.get(checkout, timeout=2).text == "new"  # the flag is read again


def test_a_kill_switch_flipped_mid_canary_overrides_the_canary(
    flags: Flags, service: Any, canary: Any
) -> None:
    """A canary release (issue 7's router) of a version that shows the new checkout behind
    a flag: flipping the kill switch at stage 2 makes the canary answer the old checkout at
    once, through the router and directly, while the release goes on."""
    import sys

    from pytest_chaos import probes
    from pytest_chaos.steady.load import Load

    flags.load({"features": [CHECKOUT]})
    old_app = Path(__file__).resolve().parents[1] / "canary" / "app.py"
    stable = service.process(
        "stable",
        [sys.executable, str(old_app), "--port", "{port}", "--version", "old"],
        ready=probes.http("/health"),
    )
    new = service.process(
        "canary",
        [sys.executable, str(Path(__file__).with_name("flagapp.py")), "--port", "{port}"],
        env={"FLAGS_URL": flags.url},
        ready=probes.http("/health"),
    )
    assert httpx.get(f"{new.url}/checkout?user=7", timeout=2).text == "new"
    router = canary.router({"stable": [stable.address], "canary": [new.address]})
    after_kill: list[str] = []

    def on_stage(entry: dict[str, Any]) -> None:
        # Stage 2's first entry: an inconclusive window extends the stage with more entries.
        if entry["stage"] == 2 and not after_kill:
            flags.store.kill("new-checkout")
            after_kill.extend(
                httpx.get(f"{new.url}/checkout?user={n}", timeout=2).text for n in range(20)
            )
            router.set_weights({"canary": 100})  # everything through the canary, briefly
            after_kill.extend(
                httpx.get(f"{router.url}/checkout?user={n}", timeout=2).text for n in range(20)
            )

    with Load.http(f"{router.url}/checkout?user=7", rps=100, duration_s=60, timeout=2).start():
        result = canary.rollout(router, stage_requests=100, stages=(5, 50, 100)).run(
            on_stage=on_stage
        )
    assert after_kill == ["old"] * 40
    assert any(entry["stage"] == 2 for entry in result.timeline)  # went on past the kill switch


def test_load_takes_segments_and_delta_documents(flags: Flags) -> None:
    segment = {
        "id": 1,
        "constraints": [{"contextName": "appName", "operator": "IN", "values": ["shop"]}],
    }
    feature = {
        "name": "shop-only",
        "enabled": True,
        "strategies": [{"name": "default", "segments": [1]}],
    }
    flags.load(
        {
            "events": [
                {"eventId": 1, "type": "hydration", "features": [CHECKOUT], "segments": [segment]},
                {"eventId": 2, "type": "feature-updated", "feature": feature},
                {"eventId": 3, "type": "feature-removed", "featureName": "new-checkout"},
            ]
        }
    )
    assert flags.store.names() == ["shop-only"]
    assert flags.store.is_enabled("shop-only", {"appName": "shop"})
    assert not flags.store.is_enabled("shop-only", {"appName": "blog"})
    with pytest.raises(FlagConfigError, match="'replay'"):
        flags.load({"events": [{"eventId": 4, "type": "replay"}]})
    assert flags.store.names() == ["shop-only"]  # nothing half-applied
