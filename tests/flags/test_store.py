"""Unit tests of FlagStore's API beyond what the Unleash specification's cases cover."""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.flags import unleash
from pytest_chaos.flags.changes import Change, Evaluation, ManualClock
from pytest_chaos.flags.store import FlagConfigError, FlagOffWarning, FlagStore
from pytest_chaos.flags.unleash import VARIANT_SEED, normalized_hash
from pytest_chaos.flags.values import parse_semver


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
        ({"features": [{"name": "f", "dependencies": [{"enabled": True}]}]}, "feature name"),
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
                                    {"contextName": "n", "operator": "NUM_GT", "value": "5 or 1"}
                                ],
                            }
                        ],
                    }
                ]
            },
            "'5 or 1'",
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
        _store(_rollout("checkout", "10", groupId='a"b'))


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
        ({"operator": "REGEX", "value": "^h.l+o$"}, "hello", "hello\n"),
        ({"operator": "REGEX", "value": "L{2}", "caseInsensitive": True}, "hello", "he"),
        (
            {"operator": "IN_CIDR", "values": ["10.0.0.0/8", "2001:db8::/32"]},
            "2001:db8::1",
            "11.0.0.1",
        ),
        ({"operator": "SEMVER_GTE", "value": "1.2.3"}, "1.2.3", "1.2.3-rc.1"),
        ({"operator": "SEMVER_LTE", "value": "1.2.3"}, "1.2.3+build", "1.2.4"),
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
    keys = [parse_semver(v) for v in ordered]
    for i in range(len(keys) - 1):
        lower, higher = keys[i], keys[i + 1]
        assert lower is not None and higher is not None
        assert lower < higher, (ordered[i], ordered[i + 1])
    for refused in ("1.2", "v1.2.3", "01.2.3", " 1.2.3", "1.2.3-01", "1.2.3-"):
        assert parse_semver(refused) is None, refused


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
    with pytest.warns(FlagOffWarning, match="'mystery'"):
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
    """docs/flags.md's examples run, and their assertions (which users are in) hold."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "flags.md").read_text()
    blocks = [
        block
        for block in re.findall(r"```python\n(.*?)```", page, re.S)
        if not block.startswith("def test_")  # the fixture's example needs a session
    ]
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs/flags.md", "exec"), {})


# --- evaluate(): every reason ------------------------------------------------------------


def _variants(*names: str, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"name": n, "weight": 1000 // len(names), "stickiness": "default", **extra} for n in names
    ]


def test_evaluate_reasons_for_each_case() -> None:
    in_10 = {"userId": "10"}
    store = _store(
        {"name": "bare", "enabled": True, "strategies": []},
        {"name": "everyone", "enabled": True, "strategies": [{"name": "default"}]},
        {"name": "off", "enabled": False, "strategies": [{"name": "default"}]},
        {
            "name": "listed",
            "enabled": True,
            "strategies": [{"name": "userWithId", "parameters": {"userIds": "7"}}],
        },
        {
            "name": "prod",
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
        _rollout("new-checkout", "10"),
        _rollout("full", "100"),
        {"name": "ab", "enabled": True, "strategies": [], "variants": _variants("a", "b")},
    )
    E = Evaluation
    assert store.evaluate("bare") == E(True, None, "STATIC")
    assert store.evaluate("everyone", in_10) == E(True, None, "STATIC")
    assert store.evaluate("full", in_10) == E(True, None, "STATIC")
    assert store.evaluate("off", in_10) == E(False, None, "DISABLED")
    assert store.evaluate("listed", {"userId": "7"}) == E(True, None, "TARGETING_MATCH")
    assert store.evaluate("listed", {"userId": "8"}) == E(False, None, "DEFAULT")
    assert store.evaluate("prod", {"environment": "prod"}) == E(True, None, "TARGETING_MATCH")
    assert store.evaluate("prod", {"environment": "dev"}) == E(False, None, "DEFAULT")
    users = [{"userId": str(u)} for u in range(100)]
    inside = next(u for u in users if store.is_enabled("new-checkout", u))
    outside = next(u for u in users if not store.is_enabled("new-checkout", u))
    assert store.evaluate("new-checkout", inside) == E(True, None, "SPLIT")
    assert store.evaluate("new-checkout", outside) == E(False, None, "DEFAULT")
    ab = store.evaluate("ab", in_10)
    assert ab.value is True and ab.reason == "SPLIT"
    assert ab.variant == store.get_variant("ab", in_10)["name"]
    assert store.evaluate("missing") == E(False, None, "ERROR", "FLAG_NOT_FOUND")
    assert store.evaluate("missing", default=True) == E(True, None, "ERROR", "FLAG_NOT_FOUND")


def test_evaluate_says_targeting_match_for_a_variant_override() -> None:
    variants = _variants("a", "b")
    variants[0]["overrides"] = [{"contextName": "userId", "values": ["vip"]}]
    store = _store({"name": "ab", "enabled": True, "strategies": [], "variants": variants})
    assert store.evaluate("ab", {"userId": "vip"}) == Evaluation(True, "a", "TARGETING_MATCH")


def test_evaluate_answers_error_when_evaluation_raises(caplog: pytest.LogCaptureFixture) -> None:
    strategy = {"name": "userWithId", "parameters": {"userIds": "a"}}
    store = _store({"name": "bare", "enabled": True, "strategies": [strategy]})

    class Hostile(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            raise RuntimeError("boom")

    result = store.evaluate("bare", Hostile(), default=True)
    assert result == Evaluation(True, None, "ERROR", "GENERAL")
    assert "raised" in caplog.text


# --- changes, listeners and the audit ----------------------------------------------------


def _recorder(store: FlagStore) -> list[Change]:
    seen: list[Change] = []
    store.listen(seen.append)
    return seen


def test_each_change_reaches_each_listener_exactly_once_and_the_audit_in_order() -> None:
    clock = ManualClock(100.0)
    store = FlagStore(clock=clock)
    first, second = _recorder(store), _recorder(store)
    store.set_unleash({"name": "f", "enabled": False, "strategies": [{"name": "default"}]})
    clock.advance(1)
    store.enable("f")
    store.enable("f", percentage=25)
    store.disable("f")
    store.kill("f")
    store.revive("f")
    store.kill()
    store.revive()
    store.remove("f")
    kinds = ["set", "enable", "enable", "disable", "kill", "revive", "kill", "revive", "remove"]
    assert [c.kind for c in first] == kinds
    assert first == second == store.audit
    assert [c.at for c in store.audit][:2] == [100.0, 101.0]
    assert store.audit[0].before is None and store.audit[-1].after is None
    assert store.audit[2].after["strategies"] == [
        {
            "name": "flexibleRollout",
            "parameters": {"rollout": "25", "stickiness": "default", "groupId": "f"},
        }
    ]
    assert store.audit[6].name is None


def test_no_event_when_nothing_changed() -> None:
    store = _store({"name": "f", "enabled": True, "strategies": [{"name": "default"}]})
    seen = _recorder(store)
    assert store.enable("f") is None
    assert store.set_unleash(store.unleash_feature("f")) is None
    assert store.remove("nope") is None
    assert store.revive("f") is None and store.revive() is None
    store.disable("f")
    assert store.disable("f") is None
    store.kill("f")
    assert store.kill("f") is None
    store.enable("f", 30)
    assert store.enable("f", 30.0) is None
    assert [c.kind for c in seen] == ["disable", "kill", "enable"]


def test_a_raising_listener_is_reported_and_stops_neither_the_others_nor_the_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlagStore()

    def hostile(change: Change) -> None:
        raise RuntimeError("listener broke")

    store.listen(hostile)
    seen = _recorder(store)
    store.define("f")
    assert store.is_enabled("f")
    assert [c.kind for c in seen] == ["set"]
    assert "listener broke" in caplog.text


def test_unsubscribe_stops_the_calls() -> None:
    store = FlagStore()
    seen: list[Change] = []
    unsubscribe = store.listen(seen.append)
    store.define("f")
    unsubscribe()
    unsubscribe()  # twice is harmless
    store.disable("f")
    assert len(seen) == 1 and len(store.audit) == 2


def test_enable_with_a_percentage_keeps_constraints_and_buckets_like_unleash() -> None:
    constraint = {"contextName": "environment", "operator": "IN", "values": ["prod"]}
    store = _store(
        {
            "name": "f",
            "enabled": False,
            "strategies": [{"name": "default", "constraints": [constraint]}],
        }
    )
    store.enable("f", 10)
    strategies = store.unleash_feature("f")["strategies"]
    assert strategies[0]["constraints"] == [constraint]
    assert store.is_enabled("f", {"userId": "10", "environment": "prod"})
    assert not store.is_enabled("f", {"userId": "10", "environment": "dev"})
    assert not store.is_enabled("f", {"userId": "42", "environment": "prod"})
    for bad in (12.5, -1, 101):
        with pytest.raises(FlagConfigError, match="whole number"):
            store.enable("f", bad)
    with pytest.raises(KeyError):
        store.enable("missing")


def test_a_bad_feature_is_refused_without_a_change() -> None:
    store = FlagStore()
    seen = _recorder(store)
    with pytest.raises(FlagConfigError):
        store.set_unleash(_rollout("f", "10", stickiness='a"b'))
    assert "f" not in store and seen == [] and store.audit == []


def test_concurrent_changes_each_reach_the_listener_once_in_audit_order() -> None:
    store = FlagStore()
    seen = _recorder(store)
    names = [f"f{i}" for i in range(8)]
    for name in names:
        store.define(name)

    def churn(name: str) -> None:
        for round_ in range(50):
            store.disable(name)
            store.enable(name, None if round_ % 2 else 40)

    threads = [threading.Thread(target=churn, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == store.audit
    assert len(seen) == len(names) * (1 + 100)
    for name in names:
        kinds = [c.kind for c in seen if c.name == name]
        assert kinds == ["set"] + ["disable", "enable"] * 50


def test_a_rollout_without_a_rollout_parameter_is_off_as_in_unleash() -> None:
    with pytest.warns(FlagOffWarning, match=r"rollout None is not a whole number"):
        store = _store(
            {"name": "f", "enabled": True, "strategies": [{"name": "flexibleRollout"}]},
        )
    assert store.evaluate("f", {"userId": "1"}) == Evaluation(False, None, "DEFAULT")


# --- the kill switch ---------------------------------------------------------------------


def test_kill_answers_off_disabled_variant_and_reason_disabled_until_revived() -> None:
    store = _store(
        {"name": "f", "enabled": True, "strategies": [], "variants": _variants("a")},
        {"name": "g", "enabled": True, "strategies": []},
    )
    ctx = {"userId": "1"}
    store.kill("f")
    assert store.killed("f") and not store.killed("g")
    assert store.is_enabled("f", ctx) is False and store.is_enabled("g", ctx) is True
    assert store.get_variant("f", ctx) == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": False,
    }
    assert store.evaluate("f", ctx) == Evaluation(False, None, "DISABLED")
    store.kill()
    store.define("later")
    assert not any(store.is_enabled(n, ctx) for n in ("f", "g", "later"))
    store.revive()
    assert store.is_enabled("g", ctx) and store.is_enabled("later", ctx)
    assert not store.is_enabled("f", ctx)  # its own kill still holds
    store.revive("f")
    assert store.evaluate("f", ctx) == Evaluation(True, "a", "STATIC")


def test_kill_and_revive_under_concurrent_evaluation() -> None:
    store = _store({"name": "f", "enabled": True, "strategies": [{"name": "default"}]})
    seen = _recorder(store)
    stop = threading.Event()
    errors: list[BaseException] = []
    answers: list[set[bool]] = []

    def evaluate() -> None:
        got: set[bool] = set()
        try:
            while not stop.is_set():
                got.add(store.is_enabled("f", {"userId": "1"}))
                evaluation = store.evaluate("f", {"userId": "1"})
                assert evaluation.reason in ("STATIC", "DISABLED")
                assert evaluation.value is (evaluation.reason == "STATIC")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        answers.append(got)

    threads = [threading.Thread(target=evaluate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(200):
        store.kill("f" if _ % 2 else None)
        # once kill() returns, no evaluation anywhere answers on
        assert store.is_enabled("f") is False
        assert store.evaluate("f").reason == "DISABLED"
        store.revive("f" if _ % 2 else None)
        assert store.is_enabled("f") is True
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == 400 and all(len(got) >= 1 for got in answers)


# --- the seed material's flags, and time ---------------------------------------------------


def test_define_translates_the_seed_strategies_into_unleash() -> None:
    store = FlagStore()
    store.define("all", kind="ops")
    store.define("none", strategy="none")
    store.define("pct", kind="experiment", strategy="percentage", percentage=10)
    store.define("ids", kind="permission", strategy="user_ids", user_ids=["a", "b"])
    assert store.unleash_feature("all")["type"] == "operational"
    assert store.is_enabled("all", {"userId": "x"})
    assert not store.is_enabled("none") and store.evaluate("none").reason == "DISABLED"
    assert store.unleash_feature("pct")["strategies"][0]["name"] == "flexibleRollout"
    reference = _store(_rollout("pct", "10"))
    for user in map(str, range(300)):
        ctx = {"userId": user}
        assert store.is_enabled("pct", ctx) == reference.is_enabled("pct", ctx)
    assert store.is_enabled("ids", {"userId": "b"}) and not store.is_enabled("ids", {"userId": "c"})
    with pytest.raises(FlagConfigError, match="kind"):
        store.define("x", kind="chaos")
    with pytest.raises(FlagConfigError, match="strategy"):
        store.define("x", strategy="sometimes")
    with pytest.raises(FlagConfigError, match="sum to 100"):
        store.define("x", variants={"a": 50, "b": 40})


def test_define_variants_split_by_their_percentages() -> None:
    store = FlagStore()
    store.define("ab", kind="experiment", variants={"a": 50, "b": 50})
    counts = {"a": 0, "b": 0}
    for user in range(2000):
        evaluation = store.evaluate("ab", {"userId": str(user)})
        assert evaluation.reason == "SPLIT" and evaluation.variant is not None
        counts[evaluation.variant] += 1
    assert 900 < counts["a"] < 1100


def test_a_gradual_rollout_follows_the_clock() -> None:
    clock = ManualClock(1_000.0)
    store = FlagStore(clock=clock)
    store.define("g", strategy="gradual", end=1_000.0 + 100.0, to_percentage=50)
    users = [{"userId": str(u)} for u in range(2000)]

    def share() -> float:
        return sum(store.is_enabled("g", u) for u in users) / len(users)

    assert share() == 0.0
    clock.advance(50)  # halfway: 25%
    cohort = {u["userId"] for u in users if store.is_enabled("g", u)}
    assert 0.22 < len(cohort) / len(users) < 0.28
    assert store.evaluate("g", {"userId": next(iter(cohort))}).reason == "SPLIT"
    clock.advance(1_000)  # past the end: stays at 50%
    assert 0.46 < share() < 0.54
    assert cohort <= {u["userId"] for u in users if store.is_enabled("g", u)}
    # the same users as a flexibleRollout of 50% with the same groupId
    reference = _store(_rollout("g", "50"))
    assert all(store.is_enabled("g", u) == reference.is_enabled("g", u) for u in users)


def test_a_gradual_rollout_defaults_to_ten_percent_an_hour_from_now() -> None:
    clock = ManualClock(0.0)
    store = FlagStore(clock=clock)
    store.define("g", strategy="gradual")
    clock.advance(3_600)
    reference = _store(_rollout("g", "10"))
    users = [{"userId": str(u)} for u in range(500)]
    assert all(store.is_enabled("g", u) == reference.is_enabled("g", u) for u in users)
    with pytest.raises(FlagConfigError, match="start < end"):
        store.define("bad", strategy="gradual", start=10, end=5)


def test_manual_clock_does_not_go_back() -> None:
    clock = ManualClock()
    clock.advance(2.5)
    assert clock.now() == 2.5
    with pytest.raises(ValueError):
        clock.advance(-1)
