"""The OFREP server and admin API over real loopback HTTP, and with the real OFREP provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_chaos.flags.ofrep import OfrepServer, context_to_unleash
from pytest_chaos.flags.store import FlagStore

EVAL = "/ofrep/v1/evaluate/flags"


def _features() -> list[dict[str, Any]]:
    rollout = {"rollout": "30", "stickiness": "default", "groupId": "canary"}
    return [
        {
            "name": "everyone",
            "enabled": True,
            "type": "release",
            "strategies": [{"name": "default"}],
        },
        {"name": "off", "enabled": False, "strategies": [{"name": "default"}]},
        {
            "name": "canary",
            "enabled": True,
            "strategies": [{"name": "flexibleRollout", "parameters": rollout}],
        },
        {
            "name": "beta",
            "enabled": True,
            "strategies": [
                {
                    "name": "default",
                    "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
                }
            ],
        },
        {
            "name": "theme",
            "enabled": True,
            "strategies": [{"name": "default"}],
            "variants": [
                {
                    "name": "blue",
                    "weight": 1000,
                    "stickiness": "default",
                    "payload": {"type": "string", "value": "#00f"},
                }
            ],
        },
        {
            "name": "theme-off",
            "enabled": False,
            "strategies": [{"name": "default"}],
            "variants": [{"name": "red", "weight": 1000, "stickiness": "default"}],
        },
    ]


@pytest.fixture
def store() -> FlagStore:
    return FlagStore.from_unleash({"features": _features()})


@pytest.fixture
def server(store: FlagStore) -> Iterator[OfrepServer]:
    with OfrepServer(store) as server:
        yield server


@pytest.fixture
def http(server: OfrepServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def _eval(http: httpx.Client, key: str, **context: Any) -> httpx.Response:
    return http.post(f"{EVAL}/{key}", json={"context": context})


# -- single evaluation ----------------------------------------------------------------------


def test_single_boolean_flags(http: httpx.Client) -> None:
    answer = _eval(http, "everyone", targetingKey="u1")
    assert answer.status_code == 200
    assert answer.json() == {
        "key": "everyone",
        "value": True,
        "reason": "STATIC",
        "variant": "enabled",
        "metadata": {"reason": "STATIC", "type": "release"},
    }
    assert _eval(http, "off").json()["value"] is False
    assert _eval(http, "off").json()["reason"] == "DISABLED"
    assert _eval(http, "beta", targetingKey="u1", plan="pro").json()["reason"] == "TARGETING_MATCH"
    # on, but no strategy matched: OFREP has no DEFAULT reason; metadata keeps the store's
    no_match = _eval(http, "beta", targetingKey="u1", plan="free").json()
    assert (no_match["value"], no_match["reason"]) == (False, "UNKNOWN")
    assert no_match["metadata"]["reason"] == "DEFAULT"


def test_single_variant_flags(http: httpx.Client) -> None:
    theme = _eval(http, "theme", targetingKey="u1").json()
    # the value is the variant's payload, typed (a string payload: its text)
    assert (theme["value"], theme["variant"], theme["reason"]) == ("#00f", "blue", "STATIC")
    off = _eval(http, "theme-off", targetingKey="u1").json()
    assert "value" not in off  # the code default applies
    assert (off["variant"], off["reason"]) == ("disabled", "DISABLED")


def test_single_errors(http: httpx.Client) -> None:
    missing = _eval(http, "nope", targetingKey="u1")
    assert missing.status_code == 404
    assert missing.json() == {
        "key": "nope",
        "errorCode": "FLAG_NOT_FOUND",
        "errorDetails": "flag 'nope' was not found",
    }
    bad_json = http.post(f"{EVAL}/everyone", content=b"{not json")
    assert bad_json.status_code == 400
    assert bad_json.json()["errorCode"] == "PARSE_ERROR"
    assert bad_json.json()["key"] == "everyone"
    assert "line 1 column 2" in bad_json.json()["errorDetails"]
    for body in ({"context": 5}, {"context": {"targetingKey": 7}}, [1]):
        answer = http.post(f"{EVAL}/everyone", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["errorCode"] == "INVALID_CONTEXT"
        assert answer.json()["key"] == "everyone"
    assert "targetingKey" in http.post(f"{EVAL}/x", json={"context": {"targetingKey": 7}}).text
    assert http.get(f"{EVAL}/everyone").status_code == 405


def test_context_mapping() -> None:
    context = {"targetingKey": "u", "sessionId": "s", "plan": "pro", "beta": True, "n": 3}
    assert context_to_unleash(context) == {
        "userId": "u",
        "sessionId": "s",
        "properties": {"plan": "pro", "beta": "true", "n": "3"},
    }
    # structures, as OpenFeature's structured attributes: a properties object is merged,
    # other objects and lists become compact JSON, nulls are dropped
    structured = {
        "targetingKey": "u",
        "userId": "ignored",
        "properties": {"tier": "gold", "seats": 5},
        "address": {"country": "CA", "zip": None},
        "tags": ["a", 1, False],
        "gone": None,
    }
    assert context_to_unleash(structured) == {
        "userId": "u",
        "properties": {
            "tier": "gold",
            "seats": "5",
            "address": '{"country":"CA","zip":null}',
            "tags": '["a",1,false]',
        },
    }


def test_structured_contexts_are_evaluated(http: httpx.Client) -> None:
    answer = _eval(http, "beta", targetingKey="u1", properties={"plan": "pro"}, geo={"c": "CA"})
    assert (answer.status_code, answer.json()["value"]) == (200, True)


def test_bucketing_matches_the_store(store: FlagStore, http: httpx.Client) -> None:
    for user in range(500):
        value = _eval(http, "canary", targetingKey=str(user)).json()["value"]
        assert value is store.is_enabled("canary", {"userId": str(user)}), user


# -- bulk evaluation and ETag ----------------------------------------------------------------


def test_bulk_and_etag(store: FlagStore, http: httpx.Client) -> None:
    answer = http.post(EVAL, json={"context": {"targetingKey": "u1", "plan": "pro"}})
    assert answer.status_code == 200
    flags = {flag["key"]: flag for flag in answer.json()["flags"]}
    assert set(flags) == set(store.names())
    assert flags["beta"]["value"] is True
    etag = answer.headers["ETag"]
    again = http.post(
        EVAL,
        json={"context": {"targetingKey": "u1", "plan": "pro"}},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304
    assert again.content == b""
    # another context, another answer: another ETag
    other = http.post(EVAL, json={"context": {"targetingKey": "u1", "plan": "free"}})
    assert other.headers["ETag"] != etag
    # any change to the store changes the ETag, even one that leaves this answer as it was
    http.post("/admin/flags/off/enable", json={})
    changed = http.post(
        EVAL,
        json={"context": {"targetingKey": "u1", "plan": "pro"}},
        headers={"If-None-Match": etag},
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    store.disable("off")
    assert http.post(EVAL, json={"context": {}}).headers["ETag"] != changed.headers["ETag"]
    bad = http.post(EVAL, json={"context": "x"})
    assert bad.status_code == 400
    assert bad.json()["errorCode"] == "INVALID_CONTEXT"
    assert http.post(EVAL, content=b"[").json()["errorCode"] == "PARSE_ERROR"


def test_unexpected_failure_is_a_500(http: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: FlagStore) -> list[str]:
        raise RuntimeError("store on fire")

    monkeypatch.setattr(FlagStore, "names", broken)
    answer = http.post(EVAL, json={})
    assert answer.status_code == 500
    assert answer.json() == {"errorDetails": "RuntimeError: store on fire"}


# -- admin ---------------------------------------------------------------------------------


def test_admin_api(store: FlagStore, http: httpx.Client) -> None:
    listed = http.get("/admin/flags").json()
    assert [f["name"] for f in listed["flags"]] == store.names()
    assert listed["killed"] is False

    feature = {"enabled": True, "strategies": [{"name": "default"}]}
    created = http.put("/admin/flags/new", json=feature)
    assert created.status_code == 201
    assert created.json()["name"] == "new"
    assert store.is_enabled("new")
    assert http.put("/admin/flags/new", json={**feature, "enabled": False}).status_code == 200
    assert not store.is_enabled("new")

    enabled = http.post("/admin/flags/new/enable", json={"percentage": 30})
    assert enabled.status_code == 200
    assert enabled.json()["strategies"][0]["parameters"]["rollout"] == "30"
    assert http.post("/admin/flags/new/enable").json()["enabled"] is True  # no change
    assert http.post("/admin/flags/new/disable").json()["enabled"] is False
    assert not store.is_enabled("new", {"userId": "1"})

    assert http.post("/admin/kill", json={"flag": "everyone"}).json() == {
        "flag": "everyone",
        "killed": True,
    }
    assert not store.is_enabled("everyone")
    assert http.post("/admin/revive", json={"flag": "everyone"}).json()["killed"] is False
    assert store.is_enabled("everyone")
    assert http.post("/admin/kill").json() == {"flag": None, "killed": True}
    assert _eval(http, "everyone").json()["reason"] == "DISABLED"
    assert http.post("/admin/revive", json={}).json()["killed"] is False
    assert store.is_enabled("everyone")

    assert http.delete("/admin/flags/new").status_code == 204
    assert "new" not in store
    assert [change.kind for change in store.audit] == [
        "set", "set", "enable", "disable",
        "kill", "revive", "kill", "revive", "remove",
    ]  # fmt: skip


def test_admin_errors(http: httpx.Client) -> None:
    def error(answer: httpx.Response, status: int) -> str:
        assert answer.status_code == status, answer.text
        message: str = answer.json()["error"]
        return message

    assert "'ghost'" in error(http.post("/admin/flags/ghost/enable"), 404)
    assert "'ghost'" in error(http.post("/admin/flags/ghost/disable"), 404)
    assert "'ghost'" in error(http.delete("/admin/flags/ghost"), 404)
    assert "'ghost'" in error(http.post("/admin/kill", json={"flag": "ghost"}), 404)
    assert "150" in error(http.post("/admin/flags/canary/enable", json={"percentage": 150}), 400)
    assert "'lots'" in error(
        http.post("/admin/flags/canary/enable", json={"percentage": "lots"}), 400
    )
    assert "'other'" in error(http.put("/admin/flags/x", json={"name": "other"}), 400)
    assert "strategies" in error(http.put("/admin/flags/x", json={"strategies": 3}), 400)
    assert "JSON" in error(http.put("/admin/flags/x", content=b"{"), 400)
    assert "[1]" in error(http.post("/admin/kill", json=[1]), 400)
    assert "5" in error(http.post("/admin/revive", json={"flag": 5}), 400)


def test_admin_is_loopback_only(store: FlagStore) -> None:
    with pytest.raises(ValueError, match=r"'0\.0\.0\.0:0' is not a loopback address"):
        OfrepServer(store, listen="0.0.0.0:0")
    with pytest.raises(ValueError, match="host:port"):
        OfrepServer(store, listen="nowhere")
    with OfrepServer(store, listen="127.0.0.1:0", admin=False) as server:
        assert httpx.get(f"{server.url}/admin/flags").status_code == 404
        assert httpx.post(f"{server.url}{EVAL}/everyone", json={}).json()["value"] is True


def test_lifecycle(store: FlagStore) -> None:
    server = OfrepServer(store).start()
    url = server.url
    assert httpx.post(f"{url}{EVAL}", json={}).status_code == 200
    server.close()
    server.close()
    with pytest.raises(RuntimeError):
        _ = server.url
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}{EVAL}", json={})
    with (
        OfrepServer(store, listen=url.removeprefix("http://")) as again,
        pytest.raises(OSError, match="address already in use"),
    ):
        OfrepServer(store, listen=again.url.removeprefix("http://")).start()


# -- the real OpenFeature OFREP provider -----------------------------------------------------


def test_openfeature_ofrep_provider(server: OfrepServer) -> None:
    pytest.importorskip("openfeature.contrib.provider.ofrep")
    from openfeature import api
    from openfeature.contrib.provider.ofrep import OFREPProvider
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.flag_evaluation import Reason
    from openfeature.provider.no_op_provider import NoOpProvider

    api.set_provider(OFREPProvider(server.url, timeout=2.0), domain="ofrep-test")
    client = api.get_client(domain="ofrep-test")
    pro = EvaluationContext(targeting_key="u1", attributes={"plan": "pro"})
    try:
        details = client.get_boolean_details("everyone", False)
        assert (details.value, details.reason, details.variant) == (True, Reason.STATIC, "enabled")
        details = client.get_boolean_details("beta", False, pro)
        assert (details.value, details.reason) == (True, Reason.TARGETING_MATCH)
        details = client.get_boolean_details("off", True)
        assert (details.value, details.reason) == (False, Reason.DISABLED)
        details = client.get_string_details("theme", "none", pro)  # type: ignore[assignment]
        assert (details.value, details.reason, details.variant) == ("#00f", Reason.STATIC, "blue")  # type: ignore[comparison-overlap]
        details = client.get_string_details("theme-off", "none", pro)  # type: ignore[assignment]
        assert (details.value, details.reason) == ("none", Reason.DISABLED)  # type: ignore[comparison-overlap]
        missing = client.get_boolean_details("nope", True)
        assert (missing.value, missing.reason) == (True, Reason.ERROR)
        assert missing.error_code is not None and missing.error_code.value == "FLAG_NOT_FOUND"
        mismatch = client.get_string_details("everyone", "x")
        assert (mismatch.value, mismatch.reason) == ("x", Reason.ERROR)
        assert mismatch.error_code is not None and mismatch.error_code.value == "TYPE_MISMATCH"

        server.close()
        down = client.get_boolean_details("everyone", False)
        assert (down.value, down.reason) == (False, Reason.ERROR)
        down_string = client.get_string_details("theme", "fallback", pro)
        assert (down_string.value, down_string.reason) == ("fallback", Reason.ERROR)
    finally:  # leave the global API as other tests expect it: only this domain was touched
        api.set_provider(NoOpProvider(), domain="ofrep-test")
