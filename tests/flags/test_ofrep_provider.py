"""The real ``openfeature-provider-ofrep`` client against the OFREP server reads what the
in-process ``StoreProvider`` answers: boolean, string, integer, float and object flags,
asked as every type, for users with and without a targeting key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("openfeature.contrib.provider.ofrep")

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from pytest_chaos.flags.ofrep import OfrepServer
from pytest_chaos.flags.openfeature import StoreProvider
from pytest_chaos.flags.store import FlagStore


def _flag(name: str, *payloads: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    variants = []
    for index, payload in enumerate(payloads):
        variant: dict[str, Any] = {"name": f"{name}-{index}", "weight": 1000 // len(payloads)}
        if payload is not None:
            variant["payload"] = payload
        variants.append(variant)
    feature: dict[str, Any] = {"name": name, "enabled": True, "strategies": [{"name": "default"}]}
    if variants:
        feature["variants"] = variants
    return {**feature, **extra}


FLAGS = [
    _flag("boolean"),
    _flag("boolean-off", enabled=False),
    {
        "name": "rollout",
        "enabled": True,
        "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "40"}}],
    },
    {
        "name": "gold-only",
        "enabled": True,
        "strategies": [
            {
                "name": "default",
                "constraints": [{"contextName": "tier", "operator": "IN", "values": ["gold"]}],
            }
        ],
        "variants": [{"name": "v", "weight": 1000, "payload": {"type": "string", "value": "x"}}],
    },
    _flag("string", {"type": "string", "value": "#ff0000"}),
    _flag("csv", {"type": "csv", "value": "a,b"}),
    _flag("named", None),
    _flag("integer", {"type": "number", "value": "5"}),
    _flag("float", {"type": "number", "value": "2.5"}),
    _flag("object", {"type": "json", "value": '{"limit": 3, "tags": ["a"]}'}),
    _flag("split", {"type": "number", "value": "1"}, {"type": "number", "value": "2"}),
]
DEFAULTS: dict[str, Any] = {
    "boolean": False,
    "string": "fallback",
    "integer": -1,
    "float": -1.5,
    "object": {"fallback": True},
}
CONTEXTS = [
    None,
    EvaluationContext(attributes={"tier": "gold"}),
    *(EvaluationContext(targeting_key=f"user-{i}") for i in range(8)),
    EvaluationContext(targeting_key="u", attributes={"tier": "gold", "geo": {"c": "CA"}}),
    EvaluationContext(attributes={"sessionId": "s-1", "tags": ["a", "b"]}),
]


@pytest.fixture
def clients() -> Iterator[tuple[OpenFeatureClient, OpenFeatureClient]]:
    """An OpenFeature client over OFREP and one in process, on the same store."""
    store = FlagStore.from_unleash({"features": FLAGS})
    api.shutdown()
    with OfrepServer(store) as server:
        api.set_provider(OFREPProvider(server.url, timeout=5.0), domain="over-ofrep")
        api.set_provider_and_wait(StoreProvider(store), domain="in-process")
        try:
            yield api.get_client("over-ofrep"), api.get_client("in-process")
        finally:
            api.shutdown()


def _ask(client: OpenFeatureClient, kind: str, flag: str, context: Any) -> tuple[Any, ...]:
    details = getattr(client, f"get_{kind}_details")(flag, DEFAULTS[kind], context)
    reason = Reason.UNKNOWN if details.reason == Reason.DEFAULT else details.reason
    return (
        details.value,
        details.variant if details.error_code is None else None,
        reason,
        details.error_code,
    )


def test_every_type_reads_the_same_over_ofrep_and_in_process(
    clients: tuple[OpenFeatureClient, OpenFeatureClient],
) -> None:
    over, inside = clients
    answers = []
    for flag in (f["name"] for f in FLAGS):
        for kind in DEFAULTS:
            for context in CONTEXTS:
                ours, theirs = _ask(inside, kind, flag, context), _ask(over, kind, flag, context)
                assert theirs == ours, (flag, kind, context)
                answers.append(theirs)
    # the comparison covered real values of each type, mismatches and missing keys
    values = {type(value) for value, _, _, error in answers if error is None}
    assert {bool, str, int, float, dict} <= values
    errors = {error for *_, error in answers}
    assert {ErrorCode.TYPE_MISMATCH, ErrorCode.TARGETING_KEY_MISSING} <= errors


def test_typed_values(clients: tuple[OpenFeatureClient, OpenFeatureClient]) -> None:
    over, _ = clients
    user = EvaluationContext(targeting_key="u1", attributes={"tier": "gold"})
    assert over.get_boolean_value("boolean", False, user) is True
    assert over.get_string_value("string", "", user) == "#ff0000"
    assert over.get_string_value("csv", "", user) == "a,b"
    assert over.get_string_value("named", "", user) == "named-0"
    assert over.get_integer_value("integer", 0, user) == 5
    assert over.get_float_value("float", 0.0, user) == 2.5
    assert over.get_object_value("object", {}, user) == {"limit": 3, "tags": ["a"]}
    assert over.get_integer_value("split", 0, user) in (1, 2)
    assert over.get_string_value("gold-only", "", user) == "x"
    assert over.get_string_value("gold-only", "none", EvaluationContext("u1")) == "none"
