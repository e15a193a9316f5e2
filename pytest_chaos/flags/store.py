"""A feature-flag store that evaluates Unleash feature-toggle documents exactly as Unleash does.

``FlagStore.from_unleash(state)`` compiles every feature once (see ``unleash.py``); after
that, ``is_enabled`` is a dictionary lookup plus one call of a closure, which is what lets
a chaos test evaluate millions of users per second with production's bucketing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_chaos.flags.unleash import (
    Context,
    FlagConfigError,
    Predicate,
    VariantPicker,
    always_false,
    always_true,
    compile_constraints,
    compile_rule,
    compile_variants,
)

__all__ = ["FlagConfigError", "FlagStore"]

_EMPTY: Context = {}

DISABLED_VARIANT: Mapping[str, Any] = {"name": "disabled", "enabled": False}
"""Unleash's answer when no variant applies (``feature_enabled`` is added per call)."""


@dataclass(frozen=True)
class _Strategy:
    """A compiled strategy: its full rule (constraints, segments, own rule) and variants."""

    matches: Predicate
    variants: VariantPicker | None


@dataclass(frozen=True)
class _Feature:
    """A compiled feature: the fast ``enabled`` predicate and what ``get_variant`` needs."""

    name: str
    enabled: Predicate
    strategies: tuple[_Strategy, ...]
    variants: VariantPicker | None
    switched_on: bool


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


def _strategy_constraints(
    strategy: dict[str, Any], segments: dict[Any, list[Any]], where: str
) -> list[Any]:
    """The strategy's own constraints plus those of every segment it names."""
    constraints = strategy.get("constraints") or []
    if not isinstance(constraints, list):
        raise FlagConfigError(f"{where}: constraints must be a list, got {constraints!r}")
    combined = list(constraints)
    for segment_id in strategy.get("segments") or []:
        if segment_id not in segments:
            raise FlagConfigError(f"{where}: unknown segment {segment_id!r}")
        combined.extend(segments[segment_id])
    return combined


def _compile_strategy(
    raw: object, feature: str, index: int, segments: dict[Any, list[Any]]
) -> _Strategy:
    """One strategy: constraints and segments first (cheap to refuse), then the rule."""
    where = f"feature {feature!r} strategy #{index}"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise FlagConfigError(f"{where}: a strategy must be an object with a name, got {raw!r}")
    where = f"feature {feature!r} strategy #{index} ({raw['name']})"
    params = raw.get("parameters") or {}
    if not isinstance(params, dict):
        raise FlagConfigError(f"{where}: parameters must be an object, got {params!r}")
    rule = compile_rule(raw["name"], params, feature, where)
    guard = compile_constraints(_strategy_constraints(raw, segments, where), where)
    group = str(params.get("groupId") or feature)
    stickiness = str(params.get("stickiness") or "default")
    variants = compile_variants(raw.get("variants"), group, where, stickiness)
    if guard is None:
        return _Strategy(rule, variants)
    if rule is always_false:
        return _Strategy(always_false, variants)
    return _Strategy(lambda context: guard(context) and rule(context), variants)


def _any_of(strategies: tuple[_Strategy, ...]) -> Predicate:
    """The feature's predicate: no strategies means on; otherwise any strategy matching."""
    if not strategies:
        return always_true
    if len(strategies) == 1:
        return strategies[0].matches
    checks = tuple(s.matches for s in strategies)
    return lambda context: any(check(context) for check in checks)


def _compile_feature(raw: object, segments: dict[Any, list[Any]]) -> _Feature:
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
    strategies = tuple(
        _compile_strategy(s, name, i, segments) for i, s in enumerate(strategies_raw)
    )
    variants = compile_variants(raw.get("variants"), name, f"feature {name!r}")
    enabled = _any_of(strategies) if switched_on else always_false
    return _Feature(name, enabled, strategies, variants, switched_on)


class FlagStore:
    """Feature flags evaluated with Unleash's rules and bucketing.

    Build one with :meth:`from_unleash`; ask it with :meth:`is_enabled` (the fast path)
    and :meth:`get_variant`. Contexts are plain dicts in Unleash's shape: ``userId``,
    ``sessionId``, ``remoteAddress``, ``environment``, ``appName``, ``currentTime`` and
    ``properties`` (a dict of custom fields).
    """

    __slots__ = ("_enabled", "_features")

    def __init__(self) -> None:
        self._features: dict[str, _Feature] = {}
        self._enabled: dict[str, Predicate] = {}

    @classmethod
    def from_unleash(cls, state: Mapping[str, Any]) -> FlagStore:
        """A store holding every feature of an Unleash feature-toggle document.

        Raises :class:`FlagConfigError` naming the feature, strategy and value that cannot
        be evaluated, so a typo in a test's flags fails at load time, not at evaluation.
        """
        if not isinstance(state, Mapping):
            raise FlagConfigError(f"an Unleash state must be an object, got {state!r}")
        features_raw = state.get("features")
        if not isinstance(features_raw, list):
            raise FlagConfigError(f"features must be a list, got {features_raw!r}")
        segments = _segments(state)
        store = cls()
        for raw in features_raw:
            feature = _compile_feature(raw, segments)
            store._features[feature.name] = feature
            store._enabled[feature.name] = feature.enabled
        return store

    def __contains__(self, name: object) -> bool:
        return name in self._features

    def __len__(self) -> int:
        return len(self._features)

    def names(self) -> list[str]:
        """The names of every feature in the store, in load order."""
        return list(self._features)

    def is_enabled(self, name: str, context: Context | None = None, default: bool = False) -> bool:
        """Whether ``name`` is on for ``context``; ``default`` for a flag the store lacks."""
        predicate = self._enabled.get(name)
        if predicate is None:
            return default
        return predicate(_EMPTY if context is None else context)

    def get_variant(self, name: str, context: Context | None = None) -> dict[str, Any]:
        """The variant ``name`` gives ``context``, in Unleash's shape.

        ``{"name", "enabled", "payload"?, "feature_enabled"}``: a strategy's own variants win
        over the feature's; ``{"name": "disabled", "enabled": False}`` when none applies.
        The returned dict is the caller's to keep (the payload inside it is shared).
        """
        feature = self._features.get(name)
        ctx = _EMPTY if context is None else context
        if feature is None or not feature.switched_on:
            return {**DISABLED_VARIANT, "feature_enabled": False}
        matched, picker = self._matching_variants(feature, ctx)
        if not matched:
            return {**DISABLED_VARIANT, "feature_enabled": False}
        variant = picker(ctx) if picker is not None else None
        if variant is None:
            return {**DISABLED_VARIANT, "feature_enabled": True}
        return dict(variant)

    @staticmethod
    def _matching_variants(
        feature: _Feature, context: Context
    ) -> tuple[bool, VariantPicker | None]:
        """Whether the feature is on for ``context``, and the variant list that then applies."""
        if not feature.strategies:
            return True, feature.variants
        for strategy in feature.strategies:
            if strategy.matches(context):
                return True, strategy.variants or feature.variants
        return False, None
