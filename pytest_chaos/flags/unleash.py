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
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

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


class FlagConfigError(ValueError):
    """A feature-toggle document holds a value that cannot be evaluated; names where and what."""


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


def context_value(context: Context, name: str) -> str | None:
    """The context field ``name`` as a string: a top-level field first, then ``properties``."""
    value = context.get(name)
    if value is None:
        properties = context.get("properties")
        if properties:
            value = properties.get(name)
        if value is None:
            return None
    return value if value.__class__ is str else str(value)


def always_true(_context: Context) -> bool:
    """The predicate of ``default`` and of a rollout at 100% with an identifier always at hand."""
    return True


def always_false(_context: Context) -> bool:
    """The predicate of a switched-off feature, a 0% rollout and an unknown strategy."""
    return False


def _fail(where: str, what: str, value: object) -> FlagConfigError:
    return FlagConfigError(f"{where}: {what}, got {value!r}")


def _percentage(value: object, where: str, name: str) -> int:
    """Parse a 0..100 percentage parameter (Unleash sends them as strings)."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _fail(where, f"{name} must be an integer 0..100", value) from None
    if not 0 <= number <= 100:
        raise _fail(where, f"{name} must be an integer 0..100", value)
    return number


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


# --- constraints ---------------------------------------------------------------------------

_SEMVER = re.compile(
    r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$",
)

SemverKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def semver_key(text: str) -> SemverKey | None:
    """A sort key that orders versions by SemVer 2.0 precedence; None if not a version."""
    match = _SEMVER.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:  # a release sorts after all of its pre-releases
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def _parse_date(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


Test = Callable[[str], bool]


def _string_test(operator: str, values: Sequence[str], fold: bool) -> Test:
    wanted = tuple(v.lower() for v in values) if fold else tuple(values)
    method = {"STR_CONTAINS": "__contains__", "STR_STARTS_WITH": "startswith"}.get(
        operator, "endswith"
    )

    def test(actual: str) -> bool:
        subject = actual.lower() if fold else actual
        bound = getattr(subject, method)
        return any(bound(w) for w in wanted)

    return test


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: bool(a == b),
    "GT": lambda a, b: bool(a > b),
    "GTE": lambda a, b: bool(a >= b),
    "LT": lambda a, b: bool(a < b),
    "LTE": lambda a, b: bool(a <= b),
    "AFTER": lambda a, b: bool(a > b),
    "BEFORE": lambda a, b: bool(a < b),
}


def _ordered_test(operator: str, value: object, where: str) -> Test:
    """NUM_*, DATE_* and SEMVER_*: parse both sides the same way, then compare."""
    family, _, relation = operator.partition("_")
    parse: Callable[[str], Any] = {
        "NUM": _parse_float,
        "DATE": _parse_date,
        "SEMVER": semver_key,
    }[family]
    expected = parse(str(value))
    if expected is None:
        raise _fail(where, f"{operator} needs a {family.lower()} value", value)
    compare = _COMPARE[relation]

    def test(actual: str) -> bool:
        parsed = parse(actual)
        return parsed is not None and compare(parsed, expected)

    return test


_ORDERED = {
    "NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE",
    "DATE_AFTER", "DATE_BEFORE",
    "SEMVER_EQ", "SEMVER_GT", "SEMVER_LT",
}  # fmt: skip


def _value_test(constraint: dict[str, Any], where: str) -> Test | None:
    """The test a present context value must pass; None for an operator Unleash lacks."""
    operator = constraint.get("operator")
    fold = bool(constraint.get("caseInsensitive", False))
    values = [str(v) for v in _as_list(constraint.get("values"), where, "values")]
    if operator in ("IN", "NOT_IN"):
        members = frozenset(values)
        return members.__contains__
    if operator in ("STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"):
        return _string_test(operator, values, fold)
    if operator in _ORDERED:
        return _ordered_test(operator, constraint.get("value"), where)
    return None


def compile_constraint(constraint: object, where: str) -> Predicate:
    """One constraint as a predicate; unknown operators never match, as in Unleash."""
    constraint = _as_dict(constraint, where, "a constraint")
    name = constraint.get("contextName")
    if not isinstance(name, str) or not name:
        raise _fail(where, "contextName must be a non-empty string", name)
    operator = constraint.get("operator")
    where = f"{where} constraint on {name!r}"
    test = _value_test(constraint, where)
    if test is None:
        return always_false
    negate = operator == "NOT_IN"
    inverted = bool(constraint.get("inverted", False))
    now = name == "currentTime"

    def predicate(context: Context) -> bool:
        actual = context_value(context, name)
        if actual is None and now:
            actual = datetime.now(timezone.utc).isoformat()
        matched = negate if actual is None else test(actual) != negate
        return matched != inverted

    return predicate


def compile_constraints(constraints: Sequence[object], where: str) -> Predicate | None:
    """All constraints must hold; None when there are none (the fast path skips the call)."""
    compiled = [compile_constraint(c, where) for c in constraints]
    if not compiled:
        return None
    if len(compiled) == 1:
        return compiled[0]
    checks = tuple(compiled)
    return lambda context: all(check(context) for check in checks)


# --- strategies ----------------------------------------------------------------------------


def _default_id(context: Context) -> str:
    """Stickiness ``default``: the userId, else the sessionId, else a random identifier."""
    value = context_value(context, "userId") or context_value(context, "sessionId")
    return value or str(random.randint(1, 100_000))


def _sticky_id(context: Context, stickiness: str) -> str | None:
    """The identifier a flexibleRollout hashes; None means "not in this rollout"."""
    if stickiness == "default":
        return _default_id(context)
    if stickiness == "random":
        return str(random.randint(1, 100_000))
    return context_value(context, stickiness)


def _flexible_rollout(params: dict[str, Any], feature: str, where: str) -> Predicate:
    rollout = _percentage(params.get("rollout", 100), where, "rollout")
    stickiness = str(params.get("stickiness") or "default")
    if rollout == 0:
        return always_false
    if rollout == 100 and stickiness in ("default", "random"):
        return always_true
    prefix = f"{params.get('groupId') or feature}:"
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


def _id_rollout(params: dict[str, Any], feature: str, where: str, field: str) -> Predicate:
    percentage = _percentage(params.get("percentage", 0), where, "percentage")
    prefix = f"{params.get('groupId') or feature}:"
    hash_ = mmh3_hash()

    def predicate(context: Context) -> bool:
        identifier = context_value(context, field)
        return identifier is not None and hash_(prefix + identifier, 0, False) % 100 < percentage

    return predicate


def _random_rollout(params: dict[str, Any], where: str) -> Predicate:
    percentage = _percentage(params.get("percentage", 0), where, "percentage")
    return lambda _context: random.randint(1, 100) <= percentage


def _listed(params: dict[str, Any], key: str) -> list[str]:
    return [part.strip() for part in str(params.get(key, "")).split(",") if part.strip()]


def _user_with_id(params: dict[str, Any]) -> Predicate:
    users = frozenset(_listed(params, "userIds"))
    return lambda context: context_value(context, "userId") in users


def _remote_address(params: dict[str, Any]) -> Predicate:
    networks = []
    for entry in _listed(params, "IPs"):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # Unleash ignores entries that are not addresses

    def predicate(context: Context) -> bool:
        address = context_value(context, "remoteAddress")
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in networks)

    return predicate


def _application_hostname(params: dict[str, Any]) -> Predicate:
    hosts = {host.lower() for host in _listed(params, "hostNames")}
    here = socket.gethostname().lower() in hosts
    return always_true if here else always_false


def compile_rule(name: str, params: dict[str, Any], feature: str, where: str) -> Predicate:
    """A built-in strategy's own rule (constraints apart); unknown strategies are off."""
    if name == "default":
        return always_true
    if name == "flexibleRollout":
        return _flexible_rollout(params, feature, where)
    if name == "userWithId":
        return _user_with_id(params)
    if name == "gradualRolloutUserId":
        return _id_rollout(params, feature, where, "userId")
    if name == "gradualRolloutSessionId":
        return _id_rollout(params, feature, where, "sessionId")
    if name == "gradualRolloutRandom":
        return _random_rollout(params, where)
    if name == "remoteAddress":
        return _remote_address(params)
    if name == "applicationHostname":
        return _application_hostname(params)
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
    """The identifier variants hash on; falls back to a random one, as Unleash does."""
    if stickiness != "default":
        value = context_value(context, stickiness)
        if value is not None:
            return value
    for field in ("userId", "sessionId", "remoteAddress"):
        value = context_value(context, field)
        if value:
            return value
    return str(random.randint(1, 100_000))


def _overrides(variants: list[dict[str, Any]], where: str) -> list[tuple[str, frozenset[str], int]]:
    rules = []
    for index, variant in enumerate(variants):
        for override in _as_list(variant.get("overrides"), where, "overrides"):
            override = _as_dict(override, where, "an override")
            values = frozenset(str(v) for v in _as_list(override.get("values"), where, "values"))
            rules.append((str(override.get("contextName")), values, index))
    return rules


def compile_variants(
    raw: object, group_id: str, where: str, stickiness: str = "default"
) -> VariantPicker | None:
    """A weighted variant list as a picker; None when the list is empty.

    The list's stickiness is its first variant's, else ``stickiness`` (a strategy's own
    variants inherit the strategy's stickiness, as in Unleash).
    """
    variants = [_as_dict(v, where, "a variant") for v in _as_list(raw, where, "variants")]
    results = [_variant_result(v, where) for v in variants]
    weights = [_weight(v, where) for v in variants]
    total = sum(weights)
    if not variants:
        return None
    overrides = _overrides(variants, where)
    stickiness = str(variants[0].get("stickiness") or stickiness)
    bounds = [sum(weights[: i + 1]) for i in range(len(weights))]
    prefix = f"{group_id}:"
    hash_ = mmh3_hash()

    def pick(context: Context) -> dict[str, Any] | None:
        for field, values, index in overrides:
            if context_value(context, field) in values:
                return results[index]
        if total <= 0:
            return None
        target = hash_(prefix + _variant_seed(context, stickiness), VARIANT_SEED, False)
        target = target % total + 1
        for bound, result in zip(bounds, results, strict=True):
            if bound >= target:
                return result
        return None  # pragma: no cover - bounds[-1] == total >= target

    return pick
