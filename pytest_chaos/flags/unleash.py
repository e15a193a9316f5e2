"""Unleash's evaluation rules, compiled once into plain closures.

Every strategy, constraint, segment and variant list of an Unleash feature-toggle document
is turned into a small function at load time, so that an evaluation is a dictionary lookup
and one or two calls, with no parsing and no allocation beyond the hash key. Bucketing uses
normalized MurmurHash3 (the ``mmh3`` package) with Unleash's seeds, so a user lands in the
same rollout cohort and the same variant here as in every Unleash SDK.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Callable, Mapping
from typing import Any

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.flags.contexts import StrictContext
from pytest_chaos.flags.errors import FlagConfigError, RuleBroken, warn_off
from pytest_chaos.flags.operators import (
    address,
    compile_constraint,
    compile_constraints,
    context_value,
    spliced,
)

__all__ = [
    "Context",
    "FlagConfigError",
    "IdentifierMissing",
    "Predicate",
    "StrictContext",
    "VariantPicker",
    "always_false",
    "always_true",
    "compile_constraint",
    "compile_constraints",
    "compile_rule",
    "compile_variants",
    "context_value",
    "mmh3_hash",
    "normalized_hash",
]

Context = Mapping[str, Any]
"""An evaluation context as Unleash defines it: userId, sessionId, ..., properties."""

Predicate = Callable[[Context], bool]
"""A compiled rule: does this context satisfy it?"""

VariantPicker = Callable[[Context], "dict[str, Any] | None"]
"""A compiled variant list: the variant for this context, or None when there is none."""

VARIANT_SEED = 86028157
"""The MurmurHash3 seed Unleash uses for variant selection (rollouts use seed 0)."""

_HashFn = Callable[[str, int, bool], int]
_hash_fn: _HashFn | None = None


def mmh3_hash() -> _HashFn:
    """Return ``mmh3.hash``, importing it on first need so stores without bucketing work bare."""
    global _hash_fn
    if _hash_fn is None:
        try:
            import mmh3
        except ImportError as exc:
            raise ImportError(
                "Unleash-compatible bucketing needs the 'mmh3' package: "
                "pip install 'pytest-chaos[flags]'"
            ) from exc
        _hash_fn = mmh3.hash
    return _hash_fn


def normalized_hash(identifier: str, group_id: str, normalizer: int = 100, seed: int = 0) -> int:
    """Unleash's bucket of ``identifier`` in ``group_id``: an integer in 1..normalizer."""
    return mmh3_hash()(f"{group_id}:{identifier}", seed, False) % normalizer + 1


def always_true(_context: Context) -> bool:
    """The predicate of ``default`` and of a rollout at 100% with an identifier always at hand."""
    return True


def always_false(_context: Context) -> bool:
    """The predicate of a switched-off feature, a 0% rollout and an unknown strategy."""
    return False


def _fail(where: str, what: str, value: object) -> FlagConfigError:
    return FlagConfigError(f"{where}: {what}, got {value!r}")


def _as_list(value: object, where: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, f"{what} must be a list", value)
    return value


def _as_dict(value: object, where: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, f"{what} must be an object", value)
    return value


# --- strategies ----------------------------------------------------------------------------


def _parameter(params: dict[str, Any], key: str, where: str) -> str | None:
    """A strategy parameter as the string Unleash holds; None when absent."""
    value = params.get(key)
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if spliced(text) and key in ("groupId", "stickiness", "IPs", "hostNames"):
        raise _fail(
            where,
            f"parameter {key} holds a double quote or ends with a backslash, which Unleash "
            "splices into its rule; pytest-chaos cannot evaluate it",
            value,
        )
    return text


def _share(params: dict[str, Any], key: str, where: str) -> int | None:
    """A rollout percentage as Unleash reads it (Rust's ``usize`` parse).

    None, with a warning, when absent or not a whole number: Unleash makes the strategy
    false. Above 100 Unleash's rule cannot compile, so the whole feature is off.
    """
    text = _parameter(params, key, where)
    digits = text[1:] if text is not None and text.startswith("+") else text
    if digits is None or not digits.isascii() or not digits.isdigit():
        warn_off(
            f"{where}: {key} {text!r} is not a whole number, so Unleash makes the strategy false"
        )
        return None
    share = int(digits)
    if share > 100:
        raise RuleBroken(f"{where}: {key} {text!r} is above 100")
    return share


class IdentifierMissing(ChaosError):
    """The answer would hang on a random identifier: the context has none (strict mode)."""


def random_id(context: Context) -> str:
    """Unleash's fallback identifier: random, except in a :class:`StrictContext`."""
    if context.__class__ is StrictContext:
        raise IdentifierMissing
    return str(random.randint(1, 100_000))


def _default_id(context: Context) -> str:
    """Stickiness ``default``: the userId, else the sessionId, else a random identifier."""
    value = context_value(context, "userId") or context_value(context, "sessionId")
    return value or random_id(context)


def _sticky_id(context: Context, stickiness: str) -> str | None:
    """The identifier a flexibleRollout hashes; None means "not in this rollout"."""
    if stickiness == "default":
        return _default_id(context)
    if stickiness == "random":
        return str(random.randint(1, 100_000))
    return context_value(context, stickiness)


def _group(params: dict[str, Any], feature: str, where: str) -> str:
    group = _parameter(params, "groupId", where)
    return feature if group is None else group


def _flexible_rollout(params: dict[str, Any], feature: str, where: str) -> Predicate:
    rollout = _share(params, "rollout", where)
    stickiness = _parameter(params, "stickiness", where) or "default"
    prefix = f"{_group(params, feature, where)}:"
    if rollout is None or rollout == 0:
        return always_false
    if rollout == 100 and stickiness in ("default", "random"):
        return always_true
    hash_ = mmh3_hash()
    if stickiness == "default":
        return _default_sticky_rollout(prefix, rollout, hash_)

    def predicate(context: Context) -> bool:
        identifier = _sticky_id(context, stickiness)
        return identifier is not None and hash_(prefix + identifier, 0, False) % 100 < rollout

    return predicate


def _default_sticky_rollout(prefix: str, rollout: int, hash_: _HashFn) -> Predicate:
    """The hot case: stickiness ``default``, written out to avoid any helper calls."""

    def predicate(context: Context) -> bool:
        identifier = context.get("userId") or context.get("sessionId")
        if identifier is None:
            identifier = _default_id(context)
        elif identifier.__class__ is not str:
            identifier = str(identifier)
        # normalized_hash(...) <= rollout  <=>  hash % 100 < rollout
        return bool(hash_(prefix + identifier, 0, False) % 100 < rollout)

    return predicate


def _id_rollout(params: dict[str, Any], where: str, field: str) -> Predicate:
    """gradualRolloutUserId/SessionId: false without both a percentage and a groupId."""
    percentage = _share(params, "percentage", where)
    group = _parameter(params, "groupId", where)
    if group is None:
        warn_off(f"{where}: no groupId, so Unleash makes the strategy false")
    if percentage is None or group is None:
        return always_false
    prefix = f"{group}:"
    hash_ = mmh3_hash()

    def predicate(context: Context) -> bool:
        identifier = context_value(context, field)
        return identifier is not None and hash_(prefix + identifier, 0, False) % 100 < percentage

    return predicate


def _random_rollout(params: dict[str, Any], where: str) -> Predicate:
    percentage = _share(params, "percentage", where)
    if percentage is None:
        return always_false
    return lambda _context: random.randint(1, 100) <= percentage


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def _user_with_id(params: dict[str, Any], where: str) -> Predicate:
    listed = _parameter(params, "userIds", where)
    if listed is None:
        warn_off(f"{where}: no userIds, so Unleash makes the strategy false")
        return always_false
    users = frozenset(_listed(listed))
    return lambda context: context_value(context, "userId") in users


def _remote_address(params: dict[str, Any], where: str) -> Predicate:
    listed = _parameter(params, "IPs", where)
    if listed is None:
        warn_off(f"{where}: no IPs, so Unleash makes the strategy false")
        return always_false
    networks = []
    for entry in _listed(listed):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # Unleash ignores entries that are not addresses

    def predicate(context: Context) -> bool:
        ip = address(context_value(context, "remoteAddress") or "")
        return ip is not None and any(ip in network for network in networks)

    return predicate


def _application_hostname(params: dict[str, Any], where: str) -> Predicate:
    hosts = {host.lower() for host in _listed(_parameter(params, "hostNames", where) or "")}
    here = socket.gethostname().lower() in hosts
    return always_true if here else always_false


def compile_rule(name: str, params: dict[str, Any], feature: str, where: str) -> Predicate:
    """A built-in strategy's own rule (constraints apart); unknown strategies are off."""
    if name == "default":
        return always_true
    if name == "flexibleRollout":
        return _flexible_rollout(params, feature, where)
    if name == "userWithId":
        return _user_with_id(params, where)
    if name == "gradualRolloutUserId":
        return _id_rollout(params, where, "userId")
    if name == "gradualRolloutSessionId":
        return _id_rollout(params, where, "sessionId")
    if name == "gradualRolloutRandom":
        return _random_rollout(params, where)
    if name == "remoteAddress":
        return _remote_address(params, where)
    if name == "applicationHostname":
        return _application_hostname(params, where)
    warn_off(
        f"{where}: Unleash has no built-in strategy {name!r} (a custom strategy "
        "needs code in the SDK), so it is off"
    )
    return always_false


# --- variants ------------------------------------------------------------------------------


def _variant_result(variant: dict[str, Any], where: str) -> dict[str, Any]:
    name = variant.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(where, "a variant needs a non-empty name", name)
    result: dict[str, Any] = {"name": name, "enabled": True, "feature_enabled": True}
    if variant.get("payload") is not None:
        result["payload"] = variant["payload"]
    return result


def _weight(variant: dict[str, Any], where: str) -> int:
    weight = variant.get("weight", 0)
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise _fail(
            where, f"variant {variant.get('name')!r} weight must be an integer >= 0", weight
        )
    return weight


def _variant_seed(context: Context, stickiness: str) -> str:
    """The identifier variants hash on, as Unleash picks it.

    ``default``: the userId, else the sessionId, else the remoteAddress; a named field:
    that field. Without it, a random identifier (Unleash's answer, not a stable one).
    """
    if stickiness != "default":
        value = context_value(context, stickiness)
        return random_id(context) if value is None else value
    for field in ("userId", "sessionId", "remoteAddress"):
        value = context_value(context, field)
        if value:
            return value
    return random_id(context)


WEIGHTLESS: dict[str, Any] = {"name": "disabled", "enabled": False, "feature_enabled": False}
"""What UnleashClient answers for a variant list whose weights are all 0 (its engine fails)."""


def _overrides(variants: list[dict[str, Any]], where: str) -> list[tuple[str, frozenset[str], int]]:
    rules = []
    for index, variant in enumerate(variants):
        for override in _as_list(variant.get("overrides"), where, "overrides"):
            override = _as_dict(override, where, "an override")
            values = frozenset(str(v) for v in _as_list(override.get("values"), where, "values"))
            rules.append((str(override.get("contextName")), values, index))
    return rules


def compile_variants(
    raw: object, group_id: str, where: str, stickiness: str | None = None
) -> VariantPicker | None:
    """A weighted variant list as a picker; None when the list is empty.

    A feature's list hashes on its first variant's stickiness (``default`` without one),
    and its overrides win over the hash; a strategy's list (``stickiness`` given) hashes
    on the strategy's ``stickiness`` parameter, whatever its variants say, and Unleash
    reads no overrides there. A list whose weights are all 0 answers
    :data:`WEIGHTLESS`, as UnleashClient does, with a warning at load.
    """
    variants = [_as_dict(v, where, "a variant") for v in _as_list(raw, where, "variants")]
    results = [_variant_result(v, where) for v in variants]
    weights = [_weight(v, where) for v in variants]
    total = sum(weights)
    if not variants:
        return None
    if stickiness is None:
        overrides = _overrides(variants, where)
        stickiness = str(variants[0].get("stickiness") or "default")
    else:
        overrides = []  # a strategy's variants have no overrides in Unleash
    if total == 0:
        warn_off(
            f"{where}: every variant weighs 0; Unleash's engine fails on such a list "
            "and UnleashClient answers the disabled variant"
        )
    bounds = [sum(weights[: i + 1]) for i in range(len(weights))]
    weighted = [result for result, weight in zip(results, weights, strict=True) if weight > 0]
    only = weighted[0] if len(weighted) == 1 else None  # no hash (nor identifier) needed
    prefix = f"{group_id}:"
    hash_ = mmh3_hash()

    def pick(context: Context) -> dict[str, Any] | None:
        for field, values, index in overrides:
            if context_value(context, field) in values:
                return results[index]
        if total <= 0:
            return WEIGHTLESS
        if only is not None:
            return only
        target = hash_(prefix + _variant_seed(context, stickiness), VARIANT_SEED, False)
        target = target % total + 1
        for bound, result in zip(bounds, results, strict=True):
            if bound >= target:
                return result
        return None  # pragma: no cover - bounds[-1] == total >= target

    return pick
