"""Unleash features compiled for the store: strategies, variants and dependencies.

A :class:`Feature` is what one feature of an Unleash document becomes at load: its
strategies as predicates (constraints, segments and rule in one, see ``unleash.py``), its
variant pickers, its dependencies, and the reasons ``evaluate`` reports. ``link`` checks a
feature's dependencies against one published set of features. A rule Unleash cannot
compile turns the whole feature off here, with a :class:`FlagOffWarning`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, final

from pytest_chaos.flags.changes import Clock, SystemClock
from pytest_chaos.flags.delta import resolve_delta
from pytest_chaos.flags.dependencies import Dependency, parse_dependencies, requirement
from pytest_chaos.flags.errors import FlagConfigError, RuleBroken, warn_off
from pytest_chaos.flags.unleash import (
    Context,
    Predicate,
    VariantPicker,
    always_false,
    always_true,
    compile_constraints,
    compile_rule,
    compile_variants,
    context_value,
    mmh3_hash,
    random_id,
)

__all__ = [
    "DISABLED_VARIANT",
    "GRADUAL_OVER_TIME",
    "Feature",
    "Strategy",
    "compile_feature",
    "feature_variant",
    "link",
    "matching_variants",
    "overridden",
    "read_document",
    "ungrouped_rollout",
    "warn_unmet",
]

GRADUAL_OVER_TIME = "gradualOverTime"
"""A pytest-chaos strategy (not Unleash's): a rollout whose percentage follows the clock."""

_ROLLOUTS = frozenset(
    {"flexibleRollout", "gradualRolloutUserId", "gradualRolloutSessionId", "gradualRolloutRandom"}
)


DISABLED_VARIANT: Mapping[str, Any] = {"name": "disabled", "enabled": False}
"""Unleash's answer when no variant applies (``feature_enabled`` is added per call)."""


@final
@dataclass(frozen=True)
class Strategy:
    """A compiled strategy: its full rule (constraints, segments, own rule) and variants."""

    matches: Predicate
    variants: VariantPicker | None
    reason: str = "STATIC"
    overrides: tuple[tuple[str, frozenset[str]], ...] = ()
    splits: bool = False


@final
@dataclass(frozen=True)
class Feature:
    """A compiled feature: the fast ``enabled`` predicate and what ``get_variant`` needs."""

    name: str
    enabled: Predicate
    strategies: tuple[Strategy, ...]
    variants: VariantPicker | None
    switched_on: bool
    overrides: tuple[tuple[str, frozenset[str]], ...] = ()
    splits: bool = False
    killed: bool = False
    dependencies: tuple[Dependency, ...] = ()
    requires: Predicate | None = None  # the dependencies' check, set when published
    picks: bool = False  # has variants (the feature's or a strategy's)


def _override_rules(raw: object) -> tuple[tuple[str, frozenset[str]], ...]:
    """A variant list's overrides as (context field, values), for ``evaluate``'s reason."""
    if not isinstance(raw, list):
        return ()
    rules = []
    for variant in raw:
        for override in (variant.get("overrides") or []) if isinstance(variant, dict) else []:
            if isinstance(override, dict):
                values = frozenset(str(v) for v in override.get("values") or [])
                rules.append((str(override.get("contextName")), values))
    return tuple(rules)


def _splits(raw: object) -> bool:
    """Whether a variant list picks by hash between two or more weighted variants."""
    if not isinstance(raw, list):
        return False
    weighted = [v for v in raw if isinstance(v, dict) and (v.get("weight") or 0) > 0]
    return len(weighted) > 1


def overridden(rules: tuple[tuple[str, frozenset[str]], ...], context: Context) -> bool:
    return any(context_value(context, field) in values for field, values in rules)


def _gradual_rule(params: dict[str, Any], feature: str, where: str, clock: Clock) -> Predicate:
    """``gradualOverTime``: a default-stickiness rollout whose percentage follows the clock.

    The percentage goes linearly from ``from`` at ``start`` to ``to`` at ``end`` (clock
    seconds), rounded down, read at each evaluation; users are bucketed exactly as a
    ``flexibleRollout`` with the same groupId buckets them, so a user once in stays in as
    the percentage grows.
    """
    try:
        start, end = float(params["start"]), float(params["end"])
        low, high = float(params.get("from", 0)), float(params.get("to", 100))
    except (KeyError, TypeError, ValueError):
        raise FlagConfigError(
            f"{where}: needs numeric start, end, from and to, got {params!r}"
        ) from None
    if end <= start or not (0 <= low <= 100 and 0 <= high <= 100):
        raise FlagConfigError(f"{where}: needs start < end and percentages 0..100, got {params!r}")
    prefix = f"{params.get('groupId') or feature}:"
    hash_ = mmh3_hash()

    def predicate(context: Context) -> bool:
        now = clock.now()
        fraction = min(1.0, max(0.0, (now - start) / (end - start)))
        percentage = math.floor(low + (high - low) * fraction)
        identifier = context_value(context, "userId") or context_value(context, "sessionId")
        if not identifier:
            identifier = random_id(context)
        return bool(hash_(prefix + identifier, 0, False) % 100 < percentage)

    return predicate


def _reason(name: str, params: dict[str, Any], constrained: bool) -> str:
    """What decided, when this strategy matches: see :class:`Evaluation`."""
    if name in _ROLLOUTS or name == GRADUAL_OVER_TIME:
        if name == "flexibleRollout":
            share = params.get("rollout", 100)  # Unleash's default: everyone
        else:
            share = params.get("percentage", 0)
        full = str(share).strip() == "100"
        if not full or name in ("gradualRolloutRandom", GRADUAL_OVER_TIME):
            return "SPLIT"
    elif name != "default":
        return "TARGETING_MATCH"
    return "TARGETING_MATCH" if constrained else "STATIC"


def _segments(state: Mapping[str, Any]) -> dict[Any, list[Any]]:
    """Top-level segments by id: each is a list of constraints shared by strategies."""
    raw = state.get("segments") or []
    if not isinstance(raw, list):
        raise FlagConfigError(f"segments must be a list, got {raw!r}")
    table: dict[Any, list[Any]] = {}
    for segment in raw:
        if not isinstance(segment, dict) or "id" not in segment:
            raise FlagConfigError(f"a segment must be an object with an id, got {segment!r}")
        constraints = segment.get("constraints") or []
        if not isinstance(constraints, list):
            raise FlagConfigError(
                f"segment {segment['id']!r}: constraints must be a list, got {constraints!r}"
            )
        table[segment["id"]] = constraints
    return table


def read_document(state: object) -> tuple[list[Any], dict[Any, list[Any]]]:
    """A document's features and segments by id; a delta document's, once applied."""
    if not isinstance(state, Mapping):
        raise FlagConfigError(f"an Unleash state must be an object, got {state!r}")
    if "events" in state and "features" not in state:
        state = resolve_delta(state)
    features = state.get("features")
    if not isinstance(features, list):
        raise FlagConfigError(f"features must be a list, got {features!r}")
    return features, _segments(state)


def _strategy_constraints(
    strategy: dict[str, Any], segments: dict[Any, list[Any]], where: str
) -> list[Any]:
    """The strategy's own constraints plus those of every segment it names.

    A missing segment breaks Unleash's rule of the whole feature (:class:`RuleBroken`).
    """
    constraints = strategy.get("constraints") or []
    if not isinstance(constraints, list):
        raise FlagConfigError(f"{where}: constraints must be a list, got {constraints!r}")
    named = strategy.get("segments") or []
    if not isinstance(named, list):
        raise FlagConfigError(f"{where}: segments must be a list of ids, got {named!r}")
    combined = list(constraints)
    for segment_id in named:
        if segment_id not in segments:
            raise RuleBroken(f"{where}: segment {segment_id!r} does not exist")
        combined.extend(segments[segment_id])
    return combined


def _compile_strategy(
    raw: object,
    feature: str,
    index: int,
    segments: dict[Any, list[Any]],
    clock: Clock,
    rollout_group: str | None = None,
) -> Strategy:
    """One strategy: constraints and segments first (cheap to refuse), then the rule."""
    where = f"feature {feature!r} strategy #{index}"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise FlagConfigError(f"{where}: a strategy must be an object with a name, got {raw!r}")
    where = f"feature {feature!r} strategy #{index} ({raw['name']})"
    params = raw.get("parameters") or {}
    if not isinstance(params, dict):
        raise FlagConfigError(f"{where}: parameters must be an object, got {params!r}")
    if raw["name"] == GRADUAL_OVER_TIME:
        rule = _gradual_rule(params, feature, where, clock)
    else:
        rule = compile_rule(raw["name"], params, rollout_group or feature, where)
    constraints = _strategy_constraints(raw, segments, where)
    guard = compile_constraints(constraints, where)
    group = feature if params.get("groupId") is None else str(params["groupId"])
    stickiness = str(params.get("stickiness") or "default")
    variants = compile_variants(raw.get("variants"), group, where, stickiness)
    reason = _reason(raw["name"], params, guard is not None)
    overrides: tuple[tuple[str, frozenset[str]], ...] = ()  # Unleash reads none here
    splits = _splits(raw.get("variants"))
    if guard is None:
        matches = rule
    elif rule is always_false:
        matches = always_false
    else:
        matches = lambda context: guard(context) and rule(context)  # noqa: E731
    return Strategy(matches, variants, reason, overrides, splits)


def _any_of(strategies: tuple[Strategy, ...]) -> Predicate:
    """The feature's predicate: no strategies means on; otherwise any strategy matching."""
    if not strategies:
        return always_true
    if len(strategies) == 1:
        return strategies[0].matches
    checks = tuple(s.matches for s in strategies)
    return lambda context: any(check(context) for check in checks)


def compile_feature(
    raw: object,
    segments: dict[Any, list[Any]],
    clock: Clock | None = None,
    rollout_group: str | None = None,
) -> Feature:
    """One feature, refused with a :class:`FlagConfigError` naming what cannot be evaluated.

    ``rollout_group``: the groupId of rollouts that name none (default: the feature's
    name; Unleash uses the dependent feature's when it checks a parent).
    """
    clock = clock or SystemClock()
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise FlagConfigError(f"a feature must be an object with a non-empty name, got {raw!r}")
    name: str = raw["name"]
    switched_on = raw.get("enabled", False)
    if not isinstance(switched_on, bool):
        raise FlagConfigError(
            f"feature {name!r}: enabled must be true or false, got {switched_on!r}"
        )
    strategies_raw = raw.get("strategies") or []
    if not isinstance(strategies_raw, list):
        raise FlagConfigError(
            f"feature {name!r}: strategies must be a list, got {strategies_raw!r}"
        )
    dependencies = parse_dependencies(raw.get("dependencies"), name)
    try:
        strategies = tuple(
            _compile_strategy(s, name, i, segments, clock, rollout_group)
            for i, s in enumerate(strategies_raw)
        )
    except RuleBroken as broken:
        warn_off(
            f"{broken}: Unleash cannot compile the rule of feature {name!r}, so the "
            "whole feature is off"
        )
        strategies = (Strategy(always_false, None),)
    variants = compile_variants(raw.get("variants"), name, f"feature {name!r}")
    enabled = _any_of(strategies) if switched_on else always_false
    return Feature(
        name,
        enabled,
        strategies,
        variants,
        switched_on,
        _override_rules(raw.get("variants")),
        _splits(raw.get("variants")),
        dependencies=dependencies,
        picks=variants is not None or any(s.variants for s in strategies),
    )


def _variant_of(feature: Feature) -> Callable[[Context], dict[str, Any] | None]:
    """The variant an enabled ``feature`` gives a context; None where Unleash's engine
    fails to pick one (weights all 0)."""

    def variant(context: Context) -> dict[str, Any] | None:
        answer = feature_variant(feature, context)
        return answer if answer["feature_enabled"] else None

    return variant


def feature_variant(feature: Feature, context: Context) -> dict[str, Any]:
    """``get_variant``'s answer for one published feature."""
    if not feature.switched_on or (feature.requires and not feature.requires(context)):
        return {**DISABLED_VARIANT, "feature_enabled": False}
    matched, picker = matching_variants(feature, context)
    if not matched:
        return {**DISABLED_VARIANT, "feature_enabled": False}
    variant = picker(context) if picker is not None else None
    if variant is None:
        return {**DISABLED_VARIANT, "feature_enabled": True}
    return dict(variant)


def link(
    feature: Feature,
    parents: Mapping[str, Feature],
    as_parent: Callable[[Feature, str], Feature],
) -> Feature:
    """``feature`` with its dependencies checked against ``parents`` (one published set);
    ``as_parent(parent, child)`` is the parent as Unleash evaluates it for ``child``."""
    checks: list[Predicate] = []
    for dependency in feature.dependencies:
        parent = parents.get(dependency.feature)
        if parent is not None:
            parent = as_parent(parent, feature.name)
        usable = parent is not None and not parent.dependencies
        picks = (
            usable and parent and (parent.variants or any(s.variants for s in parent.strategies))
        )
        check = requirement(
            dependency,
            parent.enabled if usable and parent else None,
            _variant_of(parent) if picks and parent else None,
        )
        if check is None:
            return replace(feature, enabled=always_false, requires=always_false)
        checks.append(check)
    own, needed = feature.enabled, tuple(checks)

    if len(needed) == 1:
        requires = needed[0]
    else:

        def requires(context: Context) -> bool:
            return all(check(context) for check in needed)

    return replace(
        feature,
        enabled=lambda context: own(context) and requires(context),
        requires=requires,
    )


def warn_unmet(features: Mapping[str, Feature]) -> None:
    """Name every dependency that can never hold: a missing parent, or one with parents."""
    for feature in features.values():
        for dependency in feature.dependencies:
            parent = features.get(dependency.feature)
            if parent is None or parent.dependencies:
                why = "does not exist" if parent is None else "has dependencies of its own"
                warn_off(
                    f"feature {feature.name!r} depends on {dependency.feature!r}, which "
                    f"{why}, so Unleash keeps {feature.name!r} off"
                )


def matching_variants(feature: Feature, context: Context) -> tuple[bool, VariantPicker | None]:
    """Whether the feature is on for ``context``, and the variant list that then applies."""
    if not feature.strategies:
        return True, feature.variants
    for strategy in feature.strategies:
        if strategy.matches(context):
            return True, strategy.variants or feature.variants
    return False, None


def ungrouped_rollout(raw: Mapping[str, Any]) -> bool:
    """Whether a feature has a flexibleRollout without a groupId."""
    return any(
        isinstance(strategy, dict)
        and strategy.get("name") == "flexibleRollout"
        and (strategy.get("parameters") or {}).get("groupId") is None
        for strategy in raw.get("strategies") or []
    )
