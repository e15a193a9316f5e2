"""The OpenFeature provider, through the real openfeature-sdk client."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openfeature")

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from pytest_chaos.flags.openfeature import StoreProvider, unleash_context
from pytest_chaos.flags.store import FlagStore

DOMAIN = "pytest-chaos-tests"


def _rollout(name: str, rollout: str, **extra: Any) -> dict[str, Any]:
    parameters = {"rollout": rollout, "stickiness": "userId", "groupId": name}
    return {
        "name": name,
        "enabled": True,
        "strategies": [{"name": "flexibleRollout", "parameters": parameters}],
        **extra,
    }


def _variant(name: str, payload_type: str | None = None, value: str = "") -> dict[str, Any]:
    variant: dict[str, Any] = {"name": name, "weight": 1000, "stickiness": "userId"}
    if payload_type is not None:
        variant["payload"] = {"type": payload_type, "value": value}
    return variant


FEATURES: list[dict[str, Any]] = [
    {"name": "static", "enabled": True, "strategies": [{"name": "default"}]},
    {"name": "off", "enabled": False, "strategies": [{"name": "default"}]},
    {
        "name": "targeted",
        "enabled": True,
        "strategies": [
            {
                "name": "default",
                "constraints": [
                    {"contextName": "environment", "operator": "IN", "values": ["prod"]}
                ],
            }
        ],
    },
    {
        "name": "by-plan",
        "enabled": True,
        "strategies": [
            {
                "name": "default",
                "constraints": [{"contextName": "plan", "operator": "IN", "values": ["gold"]}],
            }
        ],
    },
    _rollout("rollout", "10"),
    {"name": "text", "enabled": True, "variants": [_variant("red", "string", "#ff0000")]},
    {"name": "named", "enabled": True, "variants": [_variant("blue")]},
    {"name": "number", "enabled": True, "variants": [_variant("n", "number", "42")]},
    {"name": "decimal", "enabled": True, "variants": [_variant("d", "number", "2.5")]},
    {"name": "word", "enabled": True, "variants": [_variant("w", "string", "many")]},
    {
        "name": "json",
        "enabled": True,
        "variants": [_variant("j", "json", '{"limit": 3, "tags": ["a"]}')],
    },
    {"name": "bad-json", "enabled": True, "variants": [_variant("b", "json", "{nope")]},
    {"name": "plain", "enabled": True},
    {
        "name": "ab",
        "enabled": True,
        "variants": [
            {"name": "a", "weight": 500, "stickiness": "userId"},
            {"name": "b", "weight": 500, "stickiness": "userId"},
        ],
    },
]


@pytest.fixture
def store() -> FlagStore:
    return FlagStore.from_unleash({"version": 1, "features": FEATURES})


@pytest.fixture
def client(store: FlagStore) -> Iterator[OpenFeatureClient]:
    api.shutdown()
    api.set_provider_and_wait(StoreProvider(store), domain=DOMAIN)
    try:
        yield api.get_client(DOMAIN)
    finally:
        api.shutdown()


def _user(user_id: str, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=user_id, attributes=attributes)


def test_metadata_names_the_provider(client: OpenFeatureClient) -> None:
    assert client.provider.get_metadata().name == "pytest-chaos"
    assert api.get_provider_metadata(DOMAIN).name == "pytest-chaos"


def test_boolean_is_the_flag_on_or_off_with_the_store_reason(
    client: OpenFeatureClient, store: FlagStore
) -> None:
    static = client.get_boolean_details("static", False)
    assert (static.value, static.reason, static.error_code) == (True, Reason.STATIC, None)
    off = client.get_boolean_details("off", True)
    assert (off.value, off.reason) == (False, Reason.DISABLED)
    prod = client.get_boolean_details("targeted", False, _user("1", environment="prod"))
    assert (prod.value, prod.reason) == (True, Reason.TARGETING_MATCH)
    dev = client.get_boolean_details("targeted", True, _user("1", environment="dev"))
    assert (dev.value, dev.reason) == (False, Reason.DEFAULT)
    user = next(u for u in map(str, range(1000)) if store.is_enabled("rollout", {"userId": u}))
    inside = client.get_boolean_details("rollout", False, _user(user))
    assert (inside.value, inside.reason) == (True, Reason.SPLIT)


def test_custom_attributes_are_unleash_properties(client: OpenFeatureClient) -> None:
    assert client.get_boolean_value("by-plan", False, _user("1", plan="gold")) is True
    assert client.get_boolean_value("by-plan", False, _user("1", plan="tin")) is False


def test_the_variant_is_reported(client: OpenFeatureClient, store: FlagStore) -> None:
    for user in ("1", "2", "3", "4"):
        details = client.get_string_details("ab", "none", _user(user))
        assert details.variant == details.value == store.get_variant("ab", {"userId": user})["name"]
        assert details.reason == Reason.SPLIT
    # a flag with variants has a variant's value, not on/off: as over OFREP
    as_boolean = client.get_boolean_details("ab", False, _user("1"))
    assert (as_boolean.value, as_boolean.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    # and a flag without variants is on/off, not a string
    as_string = client.get_string_details("static", "none")
    assert (as_string.value, as_string.error_code) == ("none", ErrorCode.TYPE_MISMATCH)


def test_missing_flag_answers_the_default_with_flag_not_found(client: OpenFeatureClient) -> None:
    for details in (
        client.get_boolean_details("missing", True),
        client.get_string_details("missing", "x"),
        client.get_integer_details("missing", 7),
        client.get_float_details("missing", 1.5),
        client.get_object_details("missing", {"a": 1}),
    ):
        assert details.reason == Reason.ERROR
        assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert client.get_boolean_value("missing", True) is True
    assert client.get_integer_value("missing", 7) == 7


def test_string_is_the_payload_or_the_variant_name(client: OpenFeatureClient) -> None:
    text = client.get_string_details("text", "none")
    assert (text.value, text.variant, text.reason) == ("#ff0000", "red", Reason.STATIC)
    assert client.get_string_value("named", "none") == "blue"
    # a number payload types the value as a number, as OFREP sends it: not a string
    number = client.get_string_details("number", "none")
    assert (number.value, number.error_code) == ("none", ErrorCode.TYPE_MISMATCH)


def test_numbers_parse_the_payload(client: OpenFeatureClient) -> None:
    integer = client.get_integer_details("number", 0)
    assert (integer.value, integer.variant, integer.error_code) == (42, "n", None)
    assert isinstance(integer.value, int)
    # "42" is an integer, as OFREP sends it; the OpenFeature SDK reads no int as a float
    assert client.get_float_details("number", 0.5).error_code == ErrorCode.TYPE_MISMATCH
    assert client.get_float_value("decimal", 0.0) == 2.5


@pytest.mark.parametrize(
    ("flag", "kind"),
    [("word", "integer"), ("decimal", "integer"), ("word", "float"), ("named", "integer")],
)
def test_a_payload_that_is_not_a_number_is_a_type_mismatch(
    client: OpenFeatureClient, flag: str, kind: str
) -> None:
    if kind == "integer":
        details: Any = client.get_integer_details(flag, 5)
        assert details.value == 5
    else:
        details = client.get_float_details(flag, 0.5)
        assert details.value == 0.5
    assert details.reason == Reason.ERROR
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_object_is_the_json_payload(client: OpenFeatureClient) -> None:
    details = client.get_object_details("json", {})
    assert details.value == {"limit": 3, "tags": ["a"]}
    assert (details.variant, details.reason) == ("j", Reason.STATIC)
    for flag in ("bad-json", "word", "named"):
        mismatch = client.get_object_details(flag, {"fallback": True})
        assert mismatch.value == {"fallback": True}
        assert mismatch.error_code == ErrorCode.TYPE_MISMATCH


def test_variant_types_without_a_variant_answer_the_default(
    client: OpenFeatureClient, store: FlagStore
) -> None:
    plain = client.get_string_details("plain", "fallback")  # no variants: a boolean flag
    assert (plain.value, plain.error_code) == ("fallback", ErrorCode.TYPE_MISMATCH)
    store.set_unleash({"name": "number-off", "enabled": False, "variants": [_variant("n")]})
    off = client.get_integer_details("number-off", 3)
    assert (off.value, off.reason, off.error_code) == (3, Reason.DISABLED, None)
    store.set_unleash(
        {
            "name": "unmatched",
            "enabled": True,
            "strategies": [{"name": "userWithId", "parameters": {"userIds": "a"}}],
            "variants": [_variant("n")],
        }
    )
    unmatched = client.get_integer_details("unmatched", 3, _user("b"))
    assert (unmatched.value, unmatched.reason, unmatched.error_code) == (3, Reason.DEFAULT, None)


def test_targeting_key_buckets_as_the_store_does(
    client: OpenFeatureClient, store: FlagStore
) -> None:
    answers = [
        client.get_boolean_value("rollout", False, EvaluationContext(targeting_key=str(user)))
        for user in range(1000)
    ]
    expected = [store.is_enabled("rollout", {"userId": str(user)}) for user in range(1000)]
    assert answers == expected
    assert 50 < sum(answers) < 150  # about 10%


def test_kill_switch_answers_disabled(client: OpenFeatureClient, store: FlagStore) -> None:
    assert client.get_boolean_value("static", False) is True
    store.kill("static")
    details = client.get_boolean_details("static", True)
    assert (details.value, details.reason) == (False, Reason.DISABLED)
    store.revive("static")
    store.kill()
    assert client.get_string_details("text", "x").reason == Reason.DISABLED


def _collect(client: OpenFeatureClient) -> tuple[list[list[str] | None], threading.Condition]:
    seen: list[list[str] | None] = []
    ready = threading.Condition()

    def handler(details: EventDetails) -> None:
        with ready:
            seen.append(details.flags_changed)
            ready.notify_all()

    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    return seen, ready


def _wait_for(seen: list[Any], ready: threading.Condition, count: int) -> list[Any]:
    with ready:
        assert ready.wait_for(lambda: len(seen) >= count, timeout=5), seen
    time.sleep(0.05)  # and no more arrive
    return list(seen)


def test_configuration_changed_fires_once_per_change(
    client: OpenFeatureClient, store: FlagStore
) -> None:
    seen, ready = _collect(client)
    store.disable("static")
    store.disable("static")  # no change, no event
    store.enable("rollout", percentage=50)
    store.remove("plain")
    assert _wait_for(seen, ready, 3) == [["static"], ["rollout"], ["plain"]]
    store.kill()
    everything = _wait_for(seen, ready, 4)[3]
    assert everything is not None and sorted(everything) == sorted(store.names())


def test_the_new_configuration_is_answered_after_the_event(
    client: OpenFeatureClient, store: FlagStore
) -> None:
    assert client.get_integer_value("number", 0) == 42
    store.set_unleash(
        {"name": "number", "enabled": True, "variants": [_variant("m", "number", "7")]}
    )
    assert client.get_integer_details("number", 0).value == 7
    assert client.get_integer_details("number", 0).variant == "m"


def test_shutdown_unsubscribes(store: FlagStore) -> None:
    api.shutdown()
    provider = StoreProvider(store)
    emitted: list[Any] = []
    provider.attach(lambda _provider, event, details: emitted.append(details.flags_changed))
    provider.initialize(EvaluationContext())
    store.disable("static")
    provider.shutdown()
    store.enable("static")
    assert emitted == [["static"]]


def test_context_mapping() -> None:
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    context = EvaluationContext(
        targeting_key="u1",
        attributes={
            "userId": "ignored",
            "sessionId": "s",
            "remoteAddress": "10.0.0.1",
            "environment": "prod",
            "appName": "shop",
            "currentTime": when,
            "plan": "gold",
            "beta": True,
            "seats": 3,
        },
    )
    assert unleash_context(context) == {
        "userId": "u1",
        "sessionId": "s",
        "remoteAddress": "10.0.0.1",
        "environment": "prod",
        "appName": "shop",
        "currentTime": when.isoformat(),
        "properties": {"plan": "gold", "beta": "true", "seats": "3"},
    }
    assert unleash_context(EvaluationContext(targeting_key="u")) == {"userId": "u"}
    assert unleash_context(None) == {}


def test_the_docs_example_runs() -> None:
    """The example in docs/flags.md's OpenFeature section runs and its assertions hold."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "flags.md").read_text()
    section = page.split("\n## OpenFeature\n", 1)[1]
    blocks = re.findall(r"```py\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    api.shutdown()
    try:
        exec(compile(blocks[0], "docs/flags.md", "exec"), {})
    finally:
        api.shutdown()


def test_a_variant_name_with_two_payloads_takes_the_chosen_one(
    client: OpenFeatureClient, store: FlagStore
) -> None:
    targeted = {
        "name": "default",
        "constraints": [{"contextName": "environment", "operator": "IN", "values": ["prod"]}],
        "variants": [_variant("v", "number", "1")],
    }
    store.set_unleash(
        {
            "name": "twice",
            "enabled": True,
            "strategies": [targeted, {"name": "default"}],
            "variants": [_variant("v", "number", "2")],
        }
    )
    assert client.get_integer_value("twice", 0, _user("1", environment="prod")) == 1
    assert client.get_integer_value("twice", 0, _user("1", environment="dev")) == 2


def test_an_evaluation_that_raised_is_a_general_error(
    client: OpenFeatureClient, store: FlagStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(context: Any) -> bool:
        raise RuntimeError("boom")

    feature = store._features["static"]  # a strategy that raises when evaluated
    strategy = dataclasses.replace(feature.strategies[0], matches=broken)
    features = {**store._features, "static": dataclasses.replace(feature, strategies=(strategy,))}
    monkeypatch.setattr(store, "_features", features)
    details = client.get_string_details("static", "fallback")
    assert (details.value, details.reason) == ("fallback", Reason.ERROR)
    assert details.error_code == ErrorCode.GENERAL


def test_async_resolution(client: OpenFeatureClient) -> None:
    async def ask() -> tuple[bool, str]:
        on = await client.get_boolean_value_async("static", False)
        text = await client.get_string_value_async("text", "none")
        return on, text

    assert asyncio.run(ask()) == (True, "#ff0000")
