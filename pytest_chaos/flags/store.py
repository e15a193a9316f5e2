"""A feature-flag store that evaluates Unleash feature-toggle documents exactly as Unleash does.

``FlagStore.from_unleash(state)`` compiles every feature once (see ``features.py``); after
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
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, final

from pytest_chaos.flags.changes import Change, Clock, Evaluation, ManualClock, SystemClock
from pytest_chaos.flags.errors import FlagConfigError, FlagOffWarning
from pytest_chaos.flags.features import (
    DISABLED_VARIANT,
    GRADUAL_OVER_TIME,
    Feature,
    compile_feature,
    feature_variant,
    link,
    overridden,
    read_document,
    ungrouped_rollout,
    warn_unmet,
)
from pytest_chaos.flags.unleash import (
    Context,
    IdentifierMissing,
    Predicate,
    StrictContext,
    always_false,
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

_KINDS = {"release": "release", "experiment": "experiment", "ops": "operational"}
_KINDS["permission"] = "permission"
_EMPTY: Context = {}


@final
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
        self._features: dict[str, Feature] = {}
        self._enabled: dict[str, Predicate] = {}
        # the truth behind them, changed only under the lock
        self._compiled: dict[str, Feature] = {}
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
        features_raw, segments = read_document(state)
        store = cls(clock=clock)
        store._segments = segments
        for raw in features_raw:
            feature = compile_feature(raw, store._segments, store._clock)
            store._compiled[feature.name] = feature
            store._raw[feature.name] = copy.deepcopy(raw)
        warn_unmet(store._compiled)
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
        return feature_variant(feature, _EMPTY if context is None else context)

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
    def _evaluate(feature: Feature, ctx: Context) -> Evaluation:
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
        if overrides and overridden(overrides, ctx):
            reason = "TARGETING_MATCH"
        elif splits:
            reason = "SPLIT"
        return Evaluation(True, variant["name"], reason, None, variant.get("payload"))

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
        features: dict[str, Feature] = {}
        for name, feature in self._compiled.items():
            if self._kill_all or name in self._killed:
                feature = replace(feature, enabled=always_false, switched_on=False, killed=True)
            features[name] = feature
        for name, feature in features.items():
            if feature.dependencies:
                features[name] = link(feature, features, self._as_parent)
        enabled = {name: feature.enabled for name, feature in features.items()}
        self._features = features
        self._enabled = enabled

    def _as_parent(self, parent: Feature, child: str) -> Feature:
        """``parent`` as Unleash evaluates it when checking ``child``'s dependency: its
        rollouts without a groupId hash on the child's name (lock held)."""
        raw = self._raw.get(parent.name)
        if parent.killed or raw is None or not ungrouped_rollout(raw):
            return parent
        with warnings.catch_warnings():  # said once already, when the parent was loaded
            warnings.simplefilter("ignore", FlagOffWarning)
            return compile_feature(raw, self._segments, self._clock, rollout_group=child)

    # --- changes ---------------------------------------------------------------------------

    def _put(self, kind: str, raw: dict[str, Any]) -> Change | None:
        """Compile and install ``raw`` (lock held); a change only if the JSON differs."""
        name = raw["name"]
        before = self._raw.get(name)
        if before == raw:
            return None
        feature = compile_feature(raw, self._segments, self._clock)
        self._compiled[name] = feature
        self._raw[name] = raw
        self._publish()
        return self._emit(kind, name, copy.deepcopy(before), copy.deepcopy(raw))

    def load_unleash(self, state: Mapping[str, Any]) -> list[Change]:
        """Add or replace every feature of an Unleash document (a delta document too), with
        its segments; the changes, one per feature that differed.

        The whole document is compiled first, so a refused one changes nothing.
        """
        features, added = read_document(state)
        with self._lock:
            segments = {**self._segments, **added}
            raws = [copy.deepcopy(raw) for raw in features]
            for raw in raws:
                compile_feature(raw, segments, self._clock)  # refuse before any change
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
        compile_feature(raw, self._segments, self._clock)  # refuse before taking the lock
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
        """Add or replace a flag from a kind and a rollout strategy, translated into Unleash JSON.

        ``kind``: ``release``, ``experiment``, ``ops`` or ``permission`` (Unleash's feature
        ``type``: ops becomes ``operational``). ``strategy``: ``all`` (Unleash ``default``),
        ``none`` (switched off), ``percentage`` (a ``flexibleRollout`` of ``percentage``,
        groupId ``name``), ``user_ids`` (``userWithId``) or ``gradual``: from
        ``from_percentage`` at clock time ``start`` (default now) to ``to_percentage`` at
        ``end`` (default ten hours later: 10% an hour), read from the store's
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
        """The Unleash strategy for one of :meth:`define`'s rollout strategies."""
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
