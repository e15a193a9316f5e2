"""Unit tests of FlagStore's API beyond what the Unleash specification's cases cover."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.flags import unleash
from pytest_chaos.flags.store import FlagConfigError, FlagStore
from pytest_chaos.flags.unleash import VARIANT_SEED, normalized_hash, semver_key


def _store(*features: dict[str, Any], **extra: Any) -> FlagStore:
    return FlagStore.from_unleash({"version": 1, "features": list(features), **extra})


def _rollout(name: str, rollout: str, **params: str) -> dict[str, Any]:
    parameters = {"rollout": rollout, "stickiness": "default", "groupId": name, **params}
    return {
        "name": name,
        "enabled": True,
        "strategies": [{"name": "flexibleRollout", "parameters": parameters}],
    }


def _constrained(*constraints: dict[str, Any]) -> FlagStore:
    return _store(
        {
            "name": "f",
            "enabled": True,
            "strategies": [{"name": "default", "constraints": list(constraints)}],
        }
    )


def test_unknown_flag_answers_the_default() -> None:
    store = _store()
    assert store.is_enabled("nope") is False
    assert store.is_enabled("nope", {"userId": "1"}, default=True) is True
    assert store.get_variant("nope") == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": False,
    }


def test_a_disabled_feature_is_off_for_everyone_whatever_the_default() -> None:
    feature = {
        "name": "killed",
        "enabled": False,
        "strategies": [{"name": "default"}],
        "variants": [{"name": "v", "weight": 1}],
    }
    store = _store(feature)
    assert store.is_enabled("killed", {"userId": "1"}, default=True) is False
    assert store.get_variant("killed", {"userId": "1"})["feature_enabled"] is False


@pytest.mark.parametrize(
    ("state", "named"),
    [
        ({"features": "all"}, "'all'"),
        ({"features": [_rollout("f", "ten")]}, "'ten'"),
        ({"features": [_rollout("f", "150")]}, "'150'"),
        ({"features": [{"name": "f", "enabled": "yes"}]}, "'yes'"),
        ({"features": [{"name": "f", "variants": [{"name": "v", "weight": "x"}]}]}, "'x'"),
        (
            {
                "features": [
                    {
                        "name": "f",
                        "strategies": [
                            {
                                "name": "default",
                                "constraints": [
                                    {"contextName": "n", "operator": "NUM_GT", "value": "many"}
                                ],
                            }
                        ],
                    }
                ]
            },
            "'many'",
        ),
        (
            {"features": [{"name": "f", "strategies": [{"name": "default", "segments": [7]}]}]},
            "7",
        ),
    ],
)
def test_a_bad_document_fails_at_load_naming_the_bad_value(
    state: dict[str, Any], named: str
) -> None:
    with pytest.raises(FlagConfigError) as raised:
        FlagStore.from_unleash(state)
    assert named in str(raised.value)


def test_the_feature_is_named_in_load_errors() -> None:
    with pytest.raises(
        FlagConfigError, match=r"feature 'checkout' strategy #0 \(flexibleRollout\)"
    ):
        _store(_rollout("checkout", "ten"))


def test_rollout_buckets_equal_unleash_normalized_hash() -> None:
    store = _store(_rollout("g", "37"))
    for user in range(2000):
        expected = normalized_hash(str(user), "g") <= 37
        assert store.is_enabled("g", {"userId": str(user)}) is expected
        assert store.is_enabled("g", {"userId": user}) is expected  # numbers are stringified


def test_normalized_hash_matches_the_formula() -> None:
    import mmh3

    assert normalized_hash("123", "grp") == mmh3.hash("grp:123", 0, signed=False) % 100 + 1
    assert normalized_hash("123", "grp", 7, VARIANT_SEED) == (
        mmh3.hash("grp:123", VARIANT_SEED, signed=False) % 7 + 1
    )


def test_get_variant_returns_a_fresh_dict() -> None:
    store = _store({"name": "f", "enabled": True, "variants": [{"name": "v", "weight": 1}]})
    first = store.get_variant("f", {"userId": "1"})
    first["name"] = "mutated"
    assert store.get_variant("f", {"userId": "1"})["name"] == "v"


@pytest.mark.parametrize(
    ("constraint", "yes", "no"),
    [
        ({"operator": "STR_CONTAINS", "values": ["ell"]}, "hello", "help"),
        ({"operator": "STR_STARTS_WITH", "values": ["HE"], "caseInsensitive": True}, "hello", "oh"),
        ({"operator": "STR_ENDS_WITH", "values": ["lo"]}, "hello", "hellO"),
        ({"operator": "NUM_GT", "value": "5"}, "5.5", "5"),
        ({"operator": "NUM_LTE", "value": "5"}, "5", "6"),
        ({"operator": "NUM_EQ", "value": "2"}, "2.0", "two"),
        (
            {"operator": "DATE_AFTER", "value": "2024-01-01T00:00:00Z"},
            "2024-06-01T00:00:00Z",
            "2023-01-01T00:00:00Z",
        ),
        (
            {"operator": "DATE_BEFORE", "value": "2024-01-01T00:00:00.000Z"},
            "2023-12-31T23:59:59Z",
            "2024-01-01T00:00:01+00:00",
        ),
        ({"operator": "SEMVER_GT", "value": "1.2.3"}, "1.10.0", "1.2.3"),
        ({"operator": "SEMVER_LT", "value": "2.0.0"}, "2.0.0-rc.1", "2.0.0"),
        ({"operator": "SEMVER_EQ", "value": "1.0.0-beta.2"}, "1.0.0-beta.2", "1.0.0-beta.10"),
        ({"operator": "IN", "values": ["a"], "inverted": True}, "b", "a"),
        ({"operator": "NOT_IN", "values": ["a"]}, "b", "a"),
        ({"operator": "NO_SUCH_OPERATOR", "values": ["a"]}, None, "a"),
    ],
)
def test_constraint_operators(constraint: dict[str, Any], yes: str | None, no: str) -> None:
    store = _constrained({"contextName": "field", **constraint})
    if yes is not None:
        assert store.is_enabled("f", {"properties": {"field": yes}}) is True
    assert store.is_enabled("f", {"properties": {"field": no}}) is False


def test_semver_precedence() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2"]
    ordered += ["1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    keys = [semver_key(v) for v in ordered]
    for i in range(len(keys) - 1):
        lower, higher = keys[i], keys[i + 1]
        assert lower is not None and higher is not None
        assert lower < higher, (ordered[i], ordered[i + 1])
    assert semver_key("1.2") is None


def test_segments_add_their_constraints() -> None:
    segment = {
        "id": 1,
        "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
    }
    feature = {"name": "f", "enabled": True, "strategies": [{"name": "default", "segments": [1]}]}
    store = _store(feature, segments=[segment])
    assert store.is_enabled("f", {"properties": {"region": "eu"}}) is True
    assert store.is_enabled("f", {"properties": {"region": "us"}}) is False


def test_unknown_strategy_is_off_and_remote_address_matches_cidr() -> None:
    store = _store(
        {"name": "odd", "enabled": True, "strategies": [{"name": "mystery"}]},
        {
            "name": "ip",
            "enabled": True,
            "strategies": [
                {"name": "remoteAddress", "parameters": {"IPs": "10.0.0.0/8, 192.168.1.1"}}
            ],
        },
    )
    assert store.is_enabled("odd") is False
    assert store.is_enabled("ip", {"remoteAddress": "10.2.3.4"}) is True
    assert store.is_enabled("ip", {"remoteAddress": "192.168.1.1"}) is True
    assert store.is_enabled("ip", {"remoteAddress": "192.168.1.2"}) is False


def test_without_mmh3_bucketing_asks_for_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unleash, "_hash_fn", None)
    monkeypatch.setitem(sys.modules, "mmh3", None)
    plain = _store({"name": "on", "enabled": True, "strategies": [{"name": "default"}]})
    assert plain.is_enabled("on") is True  # no bucketing, no mmh3 needed
    with pytest.raises(ImportError, match=r"pip install 'pytest-chaos\[flags\]'"):
        _store(_rollout("f", "10"))


def test_the_docs_example_holds() -> None:
    """docs/flags.md's example runs, and its assertions (which users are in) hold."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "flags.md").read_text()
    block = re.findall(r"```python\n(.*?)```", page, re.S)[0]
    exec(compile(block, "docs/flags.md", "exec"), {})
