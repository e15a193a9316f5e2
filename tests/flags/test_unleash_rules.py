"""Unleash's rules one by one: its parsers, what it evaluates to off (with the warning that
names it), what the store refuses, dependencies, delta documents and strict contexts.
The differential test checks the same rules wholesale against UnleashClient."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest

from pytest_chaos.flags.changes import Evaluation
from pytest_chaos.flags.patterns import (
    PatternRejected,
    PatternUnsupported,
    compile_pattern,
    translate,
)
from pytest_chaos.flags.store import FlagConfigError, FlagOffWarning, FlagStore
from pytest_chaos.flags.values import constraint_family, parse_date, parse_number, parse_semver


@pytest.mark.parametrize(
    ("text", "number"),
    [("5", 5.0), ("+1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("-0", 0.0), ("inf", float("inf")),
     ("INFINITY", float("inf")), ("1e400", float("inf"))],
)  # fmt: skip
def test_numbers_as_rust_reads_them(text: str, number: float) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize("text", ["1_000", " 5", "5 ", "0x10", "1e", "", "1,0", "١"])
def test_numbers_rust_refuses(text: str) -> None:
    assert parse_number(text) is None


def test_nan_parses_and_compares_false_as_in_rust() -> None:
    nan = parse_number("NaN")
    assert nan is not None and nan != nan


def test_dates_as_chrono_reads_them() -> None:
    base = parse_date("2024-06-01T00:00:00Z")
    assert base is not None
    for same in ("2024-06-01T02:00:00+02:00", "2024-06-01t00:00:00z", "2024-06-01 00:00:00Z",
                 " 2024-06-01T00:00:00Z ", "2024-06-01T00:00:00 UTC", "2024-06-01T02:00:00+0200",
                 "2024- 06-01T00:00:00.000Z", "2024-06-01T00:00:00.000000000000Z"):  # fmt: skip
        assert parse_date(same) == base, same
    leap = parse_date("2016-12-31T23:59:60.5Z")
    assert leap is not None
    assert parse_date("2016-12-31T23:59:59.9Z") < leap < parse_date("2017-01-01T00:00:00Z")  # type: ignore[operator]
    for refused in ("2024-06-01T00:00:00", "2024-06-01", "2024-02-30T00:00:00Z",
                    "2024-06-01T24:00:00Z", "2024-06-01T00:00:00+24:00", "2024-06-01T00:00Z",
                    "2024-06-01T00:00:00+02", "1717200000"):  # fmt: skip
        assert parse_date(refused) is None, refused


def test_versions_as_the_semver_crate_reads_them() -> None:
    assert parse_semver("1.2.3+build") == parse_semver("1.2.3")
    assert parse_semver("1.0.0-rc.9") < parse_semver("1.0.0-rc.10") < parse_semver("1.0.0")  # type: ignore[operator]
    for refused in ("v1.2.3", "01.2.3", " 1.2.3", "1.2.3-01", "1.2", "1.2.3-beta_1",
                    "99999999999999999999.0.0"):  # fmt: skip
        assert parse_semver(refused) is None, refused


def test_the_value_not_the_operator_decides_how_unleash_compares() -> None:
    assert constraint_family(" 2024-01-01T00:00:00.000Z")[0] == "date"  # type: ignore[index]
    assert constraint_family("1.2.3-rc.1")[0] == "semver"  # type: ignore[index]
    assert constraint_family("5")[0] == "number"  # type: ignore[index]
    for broken in ("1_000", "2024-01-01T00:00:00.1Z", "01.2.3", "NaN", ".5", "1.2.3-"):
        assert constraint_family(broken) is None, broken


def _feature(*constraints: dict[str, Any], name: str = "f") -> dict[str, Any]:
    strategy = {"name": "default", "constraints": list(constraints)}
    return {"name": name, "enabled": True, "strategies": [strategy]}


def _warned(state: dict[str, Any]) -> tuple[FlagStore, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = FlagStore.from_unleash(state)
    return store, [str(w.message) for w in caught if w.category is FlagOffWarning]


@pytest.mark.parametrize(
    ("feature", "named"),
    [
        (_feature({"contextName": "n", "operator": "NUM_EQ", "value": "1_000"}), "'1_000'"),
        (_feature({"contextName": "n", "operator": "STR_MATCHES", "values": ["x"]}), "STR_MATCHES"),
        (_feature({"contextName": "n", "operator": "STR_CONTAINS", "values": []}), "no values"),
        (_feature({"contextName": "n", "operator": "IN_CIDR", "value": "10.0.0.0/8"}), "IN_CIDR"),
        (
            {"name": "f", "enabled": True, "strategies": [{"name": "default", "segments": [9]}]},
            "segment 9",
        ),
        (
            {
                "name": "f",
                "enabled": True,
                "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "150"}}],
            },
            "'150'",
        ),
    ],
)
def test_what_breaks_unleash_rule_turns_the_whole_feature_off(
    feature: dict[str, Any], named: str
) -> None:
    feature["strategies"].append({"name": "default"})  # would be on, but for the break
    store, said = _warned({"features": [feature]})
    assert store.is_enabled("f", {"userId": "1"}) is False
    assert store.evaluate("f", {"userId": "1"}) == Evaluation(False, None, "DEFAULT")
    assert store.get_variant("f")["name"] == "disabled"
    assert len(said) == 1 and named in said[0] and "whole feature is off" in said[0], said


def test_what_unleash_makes_false_is_false_and_named() -> None:
    v_version = {"contextName": "v", "operator": "SEMVER_GTE", "value": "v1.2.3", "inverted": True}
    lookahead = {"contextName": "e", "operator": "REGEX", "value": "a(?=b)", "inverted": True}
    no_group = {"name": "gradualRolloutUserId", "parameters": {"percentage": "100"}}
    store, said = _warned(
        {
            "features": [
                _feature(v_version, name="version"),
                _feature(lookahead, name="regex"),
                {"name": "group", "enabled": True, "strategies": [no_group]},
                {"name": "weights", "enabled": True, "variants": [{"name": "v", "weight": 0}]},
            ]
        }
    )
    context = {"userId": "1", "properties": {"v": "1.2.3", "e": "ab"}}
    assert store.is_enabled("version", context) is False  # false, inverted or not
    assert store.is_enabled("regex", context) is True  # a false match, inverted
    assert store.is_enabled("group", context) is False
    assert store.get_variant("weights", context) == {
        "name": "disabled",
        "enabled": False,
        "feature_enabled": False,
    }  # what UnleashClient answers when its engine fails on the list
    assert any("'v1.2.3'" in s for s in said) and any("lookahead" in s for s in said)
    assert any("no groupId" in s for s in said) and any("weighs 0" in s for s in said)


@pytest.mark.parametrize(
    ("constraint", "named"),
    [
        ({"operator": "NUM_EQ", "value": "5 or true"}, "'5 or true'"),
        ({"operator": "IN", "values": ["ends\\"]}, "backslash"),
        ({"operator": "REGEX", "value": "\\p{L}"}, "the escape \\p"),
        ({"operator": "REGEX", "value": "(?<name>x)"}, "group syntax"),
        ({"operator": "REGEX", "value": "a*+"}, "possessive"),
        ({"operator": "REGEX", "value": 'say "hi"'}, "double quote"),
        ({"operator": "IN", "values": [5]}, "list of strings"),
        ({"operator": "IN", "values": ["a"], "inverted": "yes"}, "inverted"),
    ],
)
def test_what_cannot_be_evaluated_exactly_is_refused_at_load(
    constraint: dict[str, Any], named: str
) -> None:
    with pytest.raises(FlagConfigError, match=re.escape(named)):
        FlagStore.from_unleash({"features": [_feature({"contextName": "x", **constraint})]})
    with pytest.raises(FlagConfigError, match="double quote"):
        FlagStore.from_unleash({"features": [_feature({"contextName": 'a"b', "operator": "IN"})]})


def test_regex_translation() -> None:
    assert translate("^a$") == r"^a\Z"  # Rust's $ never matches before a final newline
    assert translate(r"end\z") == r"end\Z"
    assert translate("[$]{2,3}") == "[$]{2,3}"
    for rejected in (r"a\Z", r"(a)\1", "(?=a)", "(?>a)", "(a", "a\\"):
        with pytest.raises(PatternRejected):
            compile_pattern(rejected, case_insensitive=False)
    assert translate("^(?i)abc$") == r"^(?i:abc\Z)"  # Rust sets flags anywhere
    assert translate("a(?i)b|c") == "a(?i:b)|(?i:c)"  # ... up to the group's end
    assert translate("(?m)^foo$") == "(?m:^foo$)"  # line ends under (?m)
    assert translate("[[:alpha:][:digit:]_]") == "[A-Za-z0-9_]"
    for unsupported in (r"\pL", "[[:^alpha:]]", "a{,3}", "(?x) a", r"\<", "(?U)a+"):
        with pytest.raises(PatternUnsupported):
            translate(unsupported)


def test_dependencies() -> None:
    parent = {"name": "parent", "enabled": True, "strategies": [{"name": "flexibleRollout",
              "parameters": {"rollout": "50"}}]}  # fmt: skip
    child = {"name": "child", "enabled": True, "dependencies": [{"feature": "parent"}]}
    opposite = {"name": "opposite", "enabled": True,
                "dependencies": [{"feature": "parent", "enabled": False}]}  # fmt: skip
    orphan = {"name": "orphan", "enabled": True, "dependencies": [{"feature": "gone"}]}
    store, said = _warned({"features": [parent, child, opposite, orphan]})
    users = [{"userId": str(n)} for n in range(200)]
    # the parent's rollout names no groupId: Unleash hashes it on the child's name there
    as_child = FlagStore.from_unleash({"features": [{**parent, "name": "child"}]})
    as_opposite = FlagStore.from_unleash({"features": [{**parent, "name": "opposite"}]})
    for user in users:
        assert store.is_enabled("child", user) is as_child.is_enabled("child", user)
        assert store.is_enabled("opposite", user) is not as_opposite.is_enabled("opposite", user)
        assert store.is_enabled("orphan", user) is False
    assert said == [
        "feature 'orphan' depends on 'gone', which does not exist, so Unleash keeps 'orphan' off"
    ]
    store.kill("parent")
    assert not any(store.is_enabled("child", user) for user in users)
    assert all(store.is_enabled("opposite", user) for user in users)


def test_strict_contexts_answer_targeting_key_missing_instead_of_at_random() -> None:
    rollout = {"name": "flexibleRollout", "parameters": {"rollout": "50"}}
    store = FlagStore.from_unleash({"features": [{"name": "r", "enabled": True,
                                                  "strategies": [rollout]}]})  # fmt: skip
    missing = store.evaluate("r", {"appName": "a"}, True, identifier_required=True)
    assert missing == Evaluation(True, None, "ERROR", "TARGETING_KEY_MISSING")
    by_session = store.evaluate("r", {"sessionId": "s"}, identifier_required=True)
    assert by_session.error_code is None
    assert store.evaluate("r", {"appName": "a"}).error_code is None  # Unleash's random id


def test_delta_documents_and_their_refusals() -> None:
    store = FlagStore.from_unleash(
        {
            "events": [
                {"type": "hydration", "features": [_feature(name="a"), _feature(name="b")],
                 "segments": [{"id": 1, "constraints": []}]},
                {"type": "feature-removed", "featureName": "a"},
                {"type": "segment-removed", "segmentId": 1},
            ]
        }
    )  # fmt: skip
    assert store.names() == ["b"]
    for events, named in (
        ("x", "events must be a list"),
        ([{"type": "feature-updated"}], "'feature'"),
        ([{"type": "rename"}], "'rename'"),
    ):
        with pytest.raises(FlagConfigError, match=named):
            FlagStore.from_unleash({"events": events})


def test_load_unleash_is_all_or_nothing() -> None:
    store = FlagStore()
    assert len(store.load_unleash({"features": [_feature(name="a")]})) == 1
    bad = _feature({"contextName": "x", "operator": "IN", "values": [1]}, name="b")
    with pytest.raises(FlagConfigError):
        store.load_unleash({"features": [_feature(name="c"), bad]})
    assert store.names() == ["a"]
