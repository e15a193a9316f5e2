"""A feature-flag store that evaluates Unleash feature-toggle documents exactly as Unleash does.

``FlagStore.from_unleash(state)`` compiles every feature once (see ``unleash.py``); after
that, ``is_enabled`` is a dictionary lookup plus one call of a closure, which is what lets
a chaos test evaluate millions of users per second with production's bucketing.

Changes (``set_unleash``, ``define``, ``enable``, ``disable``, ``remove``, ``kill``,
``revive``) take a lock, recompile the one feature they touch, and publish new lookup
dicts by swapping references, so evaluation never takes a lock and never sees half a
change. Every change goes to the listeners once and into the audit.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pytest_chaos.flags.changes import Change, Clock, Evaluation, ManualClock, SystemClock
from pytest_chaos.flags.delta import resolve_delta
from pytest_chaos.flags.dependencies import Dependency, parse_dependencies, requirement
from pytest_chaos.flags.errors import FlagConfigError, FlagOffWarning, RuleBroken, warn_off
from pytest_chaos.flags.unleash import (
    Context,
    IdentifierMissing,
    Predicate,
    StrictContext,
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
    "Change",
    "Clock",
    "Evaluation",
    "FlagConfigError",
    "FlagOffWarning",
    "FlagStore",
    "ManualClock",
    "SystemClock",
]

_log = logging.getLogger(__name__)

Listener = Callable[[Change], None]
"""A change listener: called once, with the change, after the change is in effect."""

GRADUAL_OVER_TIME = "gradualOverTime"
"""A pytest-chaos strategy (not Unleash's): a rollout whose percentage follows the clock."""

_ROLLOUTS = frozenset(
    {"flexibleRollout", "gradualRolloutUserId", "gradualRolloutSessionId", "gradualRolloutRandom"}
)
_KINDS = {"release": "release", "experiment": "experiment", "ops": "operational"}
_KINDS["permission"] = "permission"

_EMPTY: Context = {}

DISABLED_VARIANT: Mapping[str, Any] = {"name": "disabled", "enabled": False}
"""Unleash's answer when no variant applies (``feature_enabled`` is added per call)."""


@dataclass(frozen=True)
class _Strategy:
    """A compiled strategy: its full rule (constraints, segments, own rule) and variants."""

    matches: Predicate
    variants: VariantPicker | None
    reason: str = "STATIC"
    overrides: tuple[tuple[str, frozenset[str]], ...] = ()
    splits: bool = False


@dataclass(frozen=True)
class _Feature:
    """A compiled feature: the fast ``enabled`` predicate and what ``get_variant`` needs."""

    name: str
    enabled: Predicate
    strategies: tuple[_Strategy, ...]
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


def _overridden(rules: tuple[tuple[str, frozenset[str]], ...], context: Context) -> bool:
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


def _document(state: object) -> tuple[list[Any], dict[Any, list[Any]]]:
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
) -> _Strategy:
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
    return _Strategy(matches, variants, reason, overrides, splits)


def _any_of(strategies: tuple[_Strategy, ...]) -> Predicate:
    """The feature's predicate: no strategies means on; otherwise any strategy matching."""
    if not strategies:
        return always_true
    if len(strategies) == 1:
        return strategies[0].matches
    checks = tuple(s.matches for s in strategies)
    return lambda context: any(check(context) for check in checks)


def _compile_feature(
    raw: object,
    segments: dict[Any, list[Any]],
    clock: Clock | None = None,
    rollout_group: str | None = None,
) -> _Feature:
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
        strategies = (_Strategy(always_false, None),)
    variants = compile_variants(raw.get("variants"), name, f"feature {name!r}")
    enabled = _any_of(strategies) if switched_on else always_false
    return _Feature(
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


def _variant_of(feature: _Feature) -> Callable[[Context], dict[str, Any] | None]:
    """The variant an enabled ``feature`` gives a context; None where Unleash's engine
    fails to pick one (weights all 0)."""

    def variant(context: Context) -> dict[str, Any] | None:
        answer = _feature_variant(feature, context)
        return answer if answer["feature_enabled"] else None

    return variant


def _feature_variant(feature: _Feature, context: Context) -> dict[str, Any]:
    """``get_variant``'s answer for one published feature."""
    if not feature.switched_on or (feature.requires and not feature.requires(context)):
        return {**DISABLED_VARIANT, "feature_enabled": False}
    matched, picker = FlagStore._matching_variants(feature, context)
    if not matched:
        return {**DISABLED_VARIANT, "feature_enabled": False}
    variant = picker(context) if picker is not None else None
    if variant is None:
        return {**DISABLED_VARIANT, "feature_enabled": True}
    return dict(variant)


def _link(
    feature: _Feature,
    parents: Mapping[str, _Feature],
    as_parent: Callable[[_Feature, str], _Feature],
) -> _Feature:
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


def _warn_unmet(features: Mapping[str, _Feature]) -> None:
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


class FlagStore:
    """Feature flags evaluated with Unleash's rules and bucketing, changeable while in use.

    Build one with :meth:`from_unleash` (or empty, then :meth:`define` / :meth:`set_unleash`);
    ask it with :meth:`is_enabled` (the fast path), :meth:`get_variant` and :meth:`evaluate`
    (the answer with its reason). Contexts are plain dicts in Unleash's shape: ``userId``,
    ``sessionId``, ``remoteAddress``, ``environment``, ``appName``, ``currentTime`` and
    ``properties`` (a dict of custom fields). ``clock`` is what gradual-over-time rollouts
    and the audit read; pass a :class:`ManualClock` to step time in a test.
    """

    __slots__ = (
        "_audit",
        "_clock",
        "_compiled",
        "_enabled",
        "_features",
        "_kill_all",
        "_killed",
        "_listeners",
        "_lock",
        "_raw",
        "_segments",
    )

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        # what evaluation reads: swapped whole, never mutated in place
        self._features: dict[str, _Feature] = {}
        self._enabled: dict[str, Predicate] = {}
        # the truth behind them, changed only under the lock
        self._compiled: dict[str, _Feature] = {}
        self._raw: dict[str, dict[str, Any]] = {}
        self._segments: dict[Any, list[Any]] = {}
        self._killed: frozenset[str] = frozenset()
        self._kill_all = False
        self._lock = threading.RLock()
        self._listeners: tuple[Listener, ...] = ()
        self._audit: list[Change] = []

    @classmethod
    def from_unleash(cls, state: Mapping[str, Any], *, clock: Clock | None = None) -> FlagStore:
        """A store holding every feature of an Unleash feature-toggle document.

        Raises :class:`FlagConfigError` naming the feature, strategy and value that cannot
        be evaluated, so a typo in a test's flags fails at load time, not at evaluation.
        Loading is not a change: the audit starts empty.
        """
        features_raw, segments = _document(state)
        store = cls(clock=clock)
        store._segments = segments
        for raw in features_raw:
            feature = _compile_feature(raw, store._segments, store._clock)
            store._compiled[feature.name] = feature
            store._raw[feature.name] = copy.deepcopy(raw)
        _warn_unmet(store._compiled)
        store._publish()
        return store

    def __contains__(self, name: object) -> bool:
        return name in self._features

    def __len__(self) -> int:
        return len(self._features)

    def names(self) -> list[str]:
        """The names of every feature in the store, in load order."""
        return list(self._features)

    def has_variants(self, name: str) -> bool:
        """Whether ``name`` has variants (the feature's or a strategy's): its value is then
        a variant's, not on/off. False for a flag the store lacks."""
        feature = self._features.get(name)
        return feature is not None and feature.picks

    def flag_type(self, name: str) -> str | None:
        """The feature's Unleash ``type`` (``release``, ``experiment``...), if it has one."""
        kind = self._raw.get(name, {}).get("type")
        return kind if isinstance(kind, str) else None

    @property
    def clock(self) -> Clock:
        """The clock gradual rollouts and the audit read."""
        return self._clock

    # --- evaluation (lock-free) ------------------------------------------------------------

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
        if feature is None:
            return {**DISABLED_VARIANT, "feature_enabled": False}
        return _feature_variant(feature, _EMPTY if context is None else context)

    def evaluate(
        self,
        name: str,
        context: Context | None = None,
        default: bool | None = None,
        *,
        identifier_required: bool = False,
    ) -> Evaluation:
        """``is_enabled`` and ``get_variant`` in one, with OpenFeature's reason and error code.

        See :class:`Evaluation` for what each reason means. ``default`` (False when None) is
        the value only when the answer is an error: the flag is missing
        (``FLAG_NOT_FOUND``) or evaluating it raised (``GENERAL``). With
        ``identifier_required``, an answer that would hang on a random identifier (Unleash's
        fallback when the stickiness field is missing) is ``TARGETING_KEY_MISSING`` instead.
        One snapshot of the store is read, so a concurrent change is seen entirely or not
        at all.
        """
        fallback = bool(default)
        feature = self._features.get(name)
        if feature is None:
            return Evaluation(fallback, None, "ERROR", "FLAG_NOT_FOUND")
        if not feature.switched_on:
            return Evaluation(False, None, "DISABLED")
        ctx = _EMPTY if context is None else context
        if identifier_required and ctx.__class__ is not StrictContext:
            ctx = StrictContext(ctx)
        try:
            if feature.requires is not None and not feature.requires(ctx):
                return Evaluation(False, None, "DEFAULT")
            return self._evaluate(feature, ctx)
        except IdentifierMissing:
            return Evaluation(fallback, None, "ERROR", "TARGETING_KEY_MISSING")
        except Exception:
            _log.exception("evaluating flag %r raised", name)
            return Evaluation(fallback, None, "ERROR", "GENERAL")

    @staticmethod
    def _evaluate(feature: _Feature, ctx: Context) -> Evaluation:
        """The evaluation of a switched-on feature: the first matching strategy decides."""
        if not feature.strategies:
            reason, picker = "STATIC", feature.variants
            overrides, splits = feature.overrides, feature.splits
        else:
            for strategy in feature.strategies:
                if strategy.matches(ctx):
                    reason = strategy.reason
                    if strategy.variants is not None:
                        picker, overrides = strategy.variants, strategy.overrides
                        splits = strategy.splits
                    else:
                        picker, overrides = feature.variants, feature.overrides
                        splits = feature.splits
                    break
            else:
                return Evaluation(False, None, "DEFAULT")
        variant = picker(ctx) if picker is not None else None
        if variant is None or not variant["enabled"]:
            return Evaluation(True, None, reason)
        if overrides and _overridden(overrides, ctx):
            reason = "TARGETING_MATCH"
        elif splits:
            reason = "SPLIT"
        return Evaluation(True, variant["name"], reason, None, variant.get("payload"))

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

    # --- listeners and audit ---------------------------------------------------------------

    def listen(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(change)`` once for every later change; returns the unsubscribe.

        Listeners run in the changing thread, in subscription order, after the change is
        in effect and while the store's lock is held (so every listener sees changes in
        audit order). A listener that raises is logged and does not stop the others or
        undo the change.
        """
        with self._lock:
            self._listeners = (*self._listeners, callback)

        def unsubscribe() -> None:
            with self._lock:
                listeners = list(self._listeners)
                if callback in listeners:
                    listeners.remove(callback)
                self._listeners = tuple(listeners)

        return unsubscribe

    @property
    def audit(self) -> list[Change]:
        """Every change so far, oldest first (a copy)."""
        with self._lock:
            return list(self._audit)

    def _emit(self, kind: str, name: str | None, before: Any, after: Any) -> Change:
        """Record one change and tell every listener (lock held)."""
        change = Change(kind, name, before, after, self._clock.now())
        self._audit.append(change)
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                _log.exception("flag change listener %r raised on %r", listener, change)
        return change

    def _publish(self) -> None:
        """Rebuild what evaluation reads from the compiled features and the kill switch."""
        features: dict[str, _Feature] = {}
        for name, feature in self._compiled.items():
            if self._kill_all or name in self._killed:
                feature = replace(feature, enabled=always_false, switched_on=False, killed=True)
            features[name] = feature
        for name, feature in features.items():
            if feature.dependencies:
                features[name] = _link(feature, features, self._as_parent)
        enabled = {name: feature.enabled for name, feature in features.items()}
        self._features = features
        self._enabled = enabled

    def _as_parent(self, parent: _Feature, child: str) -> _Feature:
        """``parent`` as Unleash evaluates it when checking ``child``'s dependency: its
        rollouts without a groupId hash on the child's name (lock held)."""
        raw = self._raw.get(parent.name)
        if parent.killed or raw is None or not _ungrouped_rollout(raw):
            return parent
        with warnings.catch_warnings():  # said once already, when the parent was loaded
            warnings.simplefilter("ignore", FlagOffWarning)
            return _compile_feature(raw, self._segments, self._clock, rollout_group=child)

    # --- changes ---------------------------------------------------------------------------

    def _put(self, kind: str, raw: dict[str, Any]) -> Change | None:
        """Compile and install ``raw`` (lock held); a change only if the JSON differs."""
        name = raw["name"]
        before = self._raw.get(name)
        if before == raw:
            return None
        feature = _compile_feature(raw, self._segments, self._clock)
        self._compiled[name] = feature
        self._raw[name] = raw
        self._publish()
        return self._emit(kind, name, copy.deepcopy(before), copy.deepcopy(raw))

    def load_unleash(self, state: Mapping[str, Any]) -> list[Change]:
        """Add or replace every feature of an Unleash document (a delta document too), with
        its segments; the changes, one per feature that differed.

        The whole document is compiled first, so a refused one changes nothing.
        """
        features, added = _document(state)
        with self._lock:
            segments = {**self._segments, **added}
            raws = [copy.deepcopy(raw) for raw in features]
            for raw in raws:
                _compile_feature(raw, segments, self._clock)  # refuse before any change
            self._segments = segments
            changes = [self._put("set", raw) for raw in raws]
        return [change for change in changes if change is not None]

    def unleash_feature(self, name: str) -> dict[str, Any]:
        """A copy of the Unleash JSON of ``name`` (KeyError when the store lacks it)."""
        with self._lock:
            return copy.deepcopy(self._raw[name])

    def set_unleash(self, feature: Mapping[str, Any]) -> Change | None:
        """Add or replace one feature given as Unleash JSON; the change, or None if identical.

        Refused with :class:`FlagConfigError` (and no change) when it cannot be evaluated.
        """
        raw = copy.deepcopy(dict(feature))
        _compile_feature(raw, self._segments, self._clock)  # refuse before taking the lock
        with self._lock:
            return self._put("set", raw)

    def define(
        self,
        name: str,
        *,
        kind: str = "release",
        strategy: str = "all",
        percentage: float = 0,
        user_ids: Iterable[str] = (),
        start: float | None = None,
        end: float | None = None,
        from_percentage: float = 0,
        to_percentage: float = 100,
        variants: Mapping[str, int] | None = None,
        description: str = "",
    ) -> Change | None:
        """Add or replace a flag the seed material's way, translated into Unleash JSON.

        ``kind``: ``release``, ``experiment``, ``ops`` or ``permission`` (Unleash's feature
        ``type``: ops becomes ``operational``). ``strategy``: ``all`` (Unleash ``default``),
        ``none`` (switched off), ``percentage`` (a ``flexibleRollout`` of ``percentage``,
        groupId ``name``), ``user_ids`` (``userWithId``) or ``gradual``: from
        ``from_percentage`` at clock time ``start`` (default now) to ``to_percentage`` at
        ``end`` (default ten hours later: the seed's 10% an hour), read from the store's
        clock at each evaluation and bucketed as the flexibleRollout is. ``variants``: name
        to percentage of users (summing to 100), as Unleash weights out of 1000.
        """
        if kind not in _KINDS:
            raise FlagConfigError(f"flag {name!r}: kind must be one of {sorted(_KINDS)}")
        raw: dict[str, Any] = {
            "name": name,
            "description": description,
            "type": _KINDS[kind],
            "enabled": strategy != "none",
            "strategies": [self._seed_strategy(name, strategy, percentage, user_ids)],
        }
        if strategy == "gradual":
            began = self._clock.now() if start is None else float(start)
            raw["strategies"][0]["parameters"].update(
                start=began,
                end=began + 36_000 if end is None else float(end),
                to=to_percentage,
            )
            raw["strategies"][0]["parameters"]["from"] = from_percentage
        if variants:
            if sum(variants.values()) != 100:
                raise FlagConfigError(f"flag {name!r}: variant percentages must sum to 100")
            raw["variants"] = [
                {"name": variant, "weight": share * 10, "stickiness": "default"}
                for variant, share in variants.items()
            ]
        return self.set_unleash(raw)

    @staticmethod
    def _seed_strategy(
        name: str, strategy: str, percentage: float, user_ids: Iterable[str]
    ) -> dict[str, Any]:
        """The Unleash strategy for one of the seed material's rollout strategies."""
        if strategy in ("all", "none"):
            return {"name": "default"}
        if strategy == "percentage":
            rollout = _whole_percentage(percentage, name)
            return _rollouts([], name, rollout)[0]
        if strategy == "user_ids":
            return {"name": "userWithId", "parameters": {"userIds": ",".join(user_ids)}}
        if strategy == "gradual":
            parameters = {"groupId": name, "stickiness": "default"}
            return {"name": GRADUAL_OVER_TIME, "parameters": parameters}
        raise FlagConfigError(
            f"flag {name!r}: strategy must be all, none, percentage, user_ids or gradual, "
            f"got {strategy!r}"
        )

    def enable(self, name: str, percentage: float | None = None) -> Change | None:
        """Switch ``name`` on; with ``percentage``, for that share of users only.

        The percentage (a whole number 0..100, as Unleash's rollouts are) replaces every
        strategy by a ``flexibleRollout`` (stickiness ``default``, groupId ``name``) keeping
        that strategy's constraints, segments and variants, so a user's cohort is the same
        as for any Unleash client. Enabling an already enabled flag is no change (None).
        """
        rollout = None if percentage is None else _whole_percentage(percentage, name)
        with self._lock:
            raw = copy.deepcopy(self._existing(name))
            raw["enabled"] = True
            if rollout is not None:
                raw["strategies"] = _rollouts(raw.get("strategies") or [], name, rollout)
            return self._put("enable", raw)

    def disable(self, name: str) -> Change | None:
        """Switch ``name`` off for everyone; None when it already was."""
        with self._lock:
            raw = copy.deepcopy(self._existing(name))
            raw["enabled"] = False
            return self._put("disable", raw)

    def remove(self, name: str) -> Change | None:
        """Forget ``name``; None when the store did not have it."""
        with self._lock:
            if name not in self._raw:
                return None
            before = self._raw.pop(name)
            del self._compiled[name]
            self._publish()
            return self._emit("remove", name, before, None)

    def _existing(self, name: str) -> dict[str, Any]:
        raw = self._raw.get(name)
        if raw is None:
            raise KeyError(f"no flag named {name!r}")
        return raw

    def killed(self, name: str | None = None) -> bool:
        """Whether ``name`` (or, with None, every flag) is killed."""
        return self._kill_all or (name is not None and name in self._killed)

    def kill(self, name: str | None = None) -> Change | None:
        """The kill switch: ``name`` (every flag, with None) answers off from now on.

        ``is_enabled`` is False, ``get_variant`` the disabled variant and ``evaluate``'s
        reason DISABLED, whatever the flag's strategies, until :meth:`revive`. Killing
        every flag also covers flags added later. None when already killed.
        """
        with self._lock:
            if name is None:
                if self._kill_all:
                    return None
                self._kill_all = True
            else:
                if name in self._killed:
                    return None
                self._killed = self._killed | {name}
            self._publish()
            return self._emit("kill", name, False, True)

    def revive(self, name: str | None = None) -> Change | None:
        """Undo :meth:`kill`: ``name``'s own kill, or (None) the kill of every flag.

        The two switches are separate: reviving all leaves flags killed by name killed.
        None when there was nothing to undo.
        """
        with self._lock:
            if name is None:
                if not self._kill_all:
                    return None
                self._kill_all = False
            else:
                if name not in self._killed:
                    return None
                self._killed = self._killed - {name}
            self._publish()
            return self._emit("revive", name, True, False)


def _ungrouped_rollout(raw: Mapping[str, Any]) -> bool:
    """Whether a feature has a flexibleRollout without a groupId."""
    return any(
        isinstance(strategy, dict)
        and strategy.get("name") == "flexibleRollout"
        and (strategy.get("parameters") or {}).get("groupId") is None
        for strategy in raw.get("strategies") or []
    )


def _whole_percentage(percentage: float, name: str) -> int:
    """A rollout percentage as Unleash holds it: a whole number 0..100."""
    if isinstance(percentage, bool) or not 0 <= percentage <= 100 or percentage != int(percentage):
        raise FlagConfigError(
            f"flag {name!r}: a rollout percentage is a whole number 0..100, got {percentage!r}"
        )
    return int(percentage)


def _rollouts(strategies: list[Any], name: str, rollout: int) -> list[dict[str, Any]]:
    """Every strategy as a flexibleRollout of ``rollout`` keeping its targeting."""
    parameters = {"rollout": str(rollout), "stickiness": "default", "groupId": name}
    result: list[dict[str, Any]] = []
    for strategy in strategies or [{}]:
        new: dict[str, Any] = {"name": "flexibleRollout", "parameters": dict(parameters)}
        for key in ("constraints", "segments", "variants"):
            if isinstance(strategy, dict) and strategy.get(key):
                new[key] = strategy[key]
        if new not in result:
            result.append(new)
    return result
