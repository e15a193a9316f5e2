"""Unleash's constraint operators, each compiled once into a predicate over a context.

The rules are Unleash's (the Yggdrasil engine of UnleashClient 6.9.1), read from its
documentation and checked against it value by value (``tests/flags/test_differential.py``):

- a context without the field fails every operator but ``NOT_IN``; ``inverted`` then
  negates the result, as it negates a value that cannot be parsed;
- ``IN``/``NOT_IN`` compare exactly; ``STR_*`` with ``caseInsensitive`` lower both sides;
- the ordered operators (``NUM_*``, ``DATE_*``, ``SEMVER_*``) compare as the constraint's
  value reads (see :func:`~pytest_chaos.flags.values.constraint_family`); a ``SEMVER_*``
  value starting with ``v`` is false, inverted or not;
- ``REGEX`` searches with the ``value`` (``values`` is not read; no value matches all),
  see ``patterns.py``;
  ``IN_CIDR`` holds when the address is in one of the ``values`` networks;
- an unknown operator breaks Unleash's rule: the whole feature is off.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from pytest_chaos.flags.errors import FlagConfigError, RuleBroken, warn_off
from pytest_chaos.flags.patterns import PatternRejected, PatternUnsupported, compile_pattern
from pytest_chaos.flags.values import (
    SplicedValue,
    constraint_family,
    parse_date,
    parse_number,
    parse_semver,
)

__all__ = ["OPERATORS", "compile_constraint", "context_value", "spliced"]

Context = Any
Predicate = Callable[[Any], bool]
Test = Callable[[str], bool]

_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "NUM_EQ": operator.eq,
    "NUM_GT": operator.gt,
    "NUM_GTE": operator.ge,
    "NUM_LT": operator.lt,
    "NUM_LTE": operator.le,
    "DATE_AFTER": operator.gt,
    "DATE_BEFORE": operator.lt,
    "SEMVER_EQ": operator.eq,
    "SEMVER_GT": operator.gt,
    "SEMVER_GTE": operator.ge,
    "SEMVER_LT": operator.lt,
    "SEMVER_LTE": operator.le,
}
_STRINGS = {"STR_CONTAINS": "__contains__", "STR_STARTS_WITH": "startswith"}
_STRINGS["STR_ENDS_WITH"] = "endswith"
OPERATORS = frozenset({"IN", "NOT_IN", "REGEX", "IN_CIDR", *_STRINGS, *_RELATIONS})
"""Every operator Unleash evaluates; any other is false."""

_PARSERS: dict[str, Callable[[str], Any]] = {
    "number": parse_number,
    "date": parse_date,
    "semver": parse_semver,
}


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


def spliced(text: str) -> bool:
    """Whether Unleash cannot splice ``text`` into its rule as a quoted string unchanged."""
    return '"' in text or text.endswith("\\")


def _strings(raw: object, where: str, what: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise FlagConfigError(f"{where}: {what} must be a list of strings, got {raw!r}")
    return raw


def _string_test(operator_: str, values: Sequence[str], fold: bool) -> Test:
    wanted = tuple(v.lower() for v in values) if fold else tuple(values)
    method = _STRINGS[operator_]

    def test(actual: str) -> bool:
        bound = getattr(actual.lower() if fold else actual, method)
        return any(bound(w) for w in wanted)

    return test


def _ordered_test(operator_: str, value: object, where: str) -> Test | None:
    """An ordered operator's test; None for a ``v`` version (false, even inverted)."""
    if not isinstance(value, str):
        raise RuleBroken(f"{where}: {operator_} needs a value, got {value!r}")
    if operator_.startswith("SEMVER_") and value.startswith("v"):
        warn_off(
            f"{where}: {operator_} value {value!r} starts with 'v', which Unleash "
            "evaluates to false (write the version without it)"
        )
        return None
    try:
        read = constraint_family(value)
    except SplicedValue:
        raise FlagConfigError(
            f"{where}: {operator_} value {value!r} would be read by Unleash as more of its "
            "rule than a value; pytest-chaos cannot evaluate it"
        ) from None
    if read is None:
        raise RuleBroken(
            f"{where}: {operator_} value {value!r} is not a date, version or number "
            "Unleash can read"
        )
    family, expected = read
    parse, relation = _PARSERS[family], _RELATIONS[operator_]

    def test(actual: str) -> bool:
        parsed = parse(actual)
        return parsed is not None and relation(parsed, expected)

    return test


def _regex_test(constraint: dict[str, Any], where: str, fold: bool) -> Test:
    """``REGEX``: a search with the constraint's ``value``; Unleash does not read
    ``values`` here, and without a value the empty pattern matches everything."""
    pattern = constraint.get("value")
    if pattern is None:
        pattern = ""
    if not isinstance(pattern, str):
        raise FlagConfigError(f"{where}: REGEX value must be a string, got {pattern!r}")
    if spliced(pattern):
        raise FlagConfigError(
            f"{where}: REGEX pattern {pattern!r} holds a double quote or ends with a "
            "backslash, which Unleash splices into its rule; pytest-chaos cannot evaluate it"
        )
    try:
        search = compile_pattern(pattern, fold).search
    except PatternRejected as error:
        warn_off(
            f"{where}: Unleash's regex engine refuses {pattern!r} ({error}), "
            "so the pattern never matches"
        )
        return lambda actual: False
    except PatternUnsupported as error:
        raise FlagConfigError(
            f"{where}: REGEX pattern {pattern!r} uses {error}, which Python's re and "
            "Unleash's Rust regex read differently; pytest-chaos cannot evaluate it"
        ) from None
    return lambda actual: search(actual) is not None


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "%" in entry or entry != entry.strip():
        return None
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address as Rust reads one: no spaces, no zone, no prefix, no leading zeros."""
    if "%" in text or text != text.strip():
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _cidr_test(constraint: dict[str, Any], where: str) -> Test:
    entries = _strings(constraint.get("values"), where, "values")
    if not entries:
        raise RuleBroken(f"{where}: IN_CIDR needs a list of networks in values")
    networks = [network for network in map(_network, entries) if network is not None]
    if len(networks) < len(entries):
        bad = [entry for entry in entries if _network(entry) is None]
        warn_off(f"{where}: IN_CIDR entries {bad!r} are not networks; Unleash ignores them")

    def test(actual: str) -> bool:
        ip = address(actual)
        return ip is not None and any(ip in network for network in networks)

    return test


def _value_test(constraint: dict[str, Any], where: str) -> Test | None:
    """The test a present context value must pass; None when the constraint is false
    whatever the context (a ``v`` version)."""
    operator_ = constraint.get("operator")
    fold = constraint.get("caseInsensitive", False) is True
    if operator_ in ("IN", "NOT_IN") or operator_ in _STRINGS:
        values = _strings(constraint.get("values"), where, "values")
        if any(value.endswith("\\") for value in values):
            raise FlagConfigError(
                f"{where}: a value ending with a backslash breaks Unleash's rule "
                f"({values!r}); pytest-chaos cannot evaluate it"
            )
        if operator_ in _STRINGS:
            if not values:
                raise RuleBroken(f"{where}: {operator_} has no values")
            return _string_test(operator_, values, fold)
        return frozenset(values).__contains__
    if operator_ in _RELATIONS:
        return _ordered_test(operator_, constraint.get("value"), where)
    if operator_ == "REGEX":
        return _regex_test(constraint, where, fold)
    if operator_ == "IN_CIDR":
        return _cidr_test(constraint, where)
    raise RuleBroken(f"{where}: Unleash has no operator {operator_!r}")


def _false(_context: Context) -> bool:
    return False


def compile_constraint(constraint: object, where: str) -> Predicate:
    """One constraint as a predicate (see the module's rules)."""
    if not isinstance(constraint, dict):
        raise FlagConfigError(f"{where}: a constraint must be an object, got {constraint!r}")
    name = constraint.get("contextName")
    if not isinstance(name, str) or not name:
        raise FlagConfigError(f"{where}: contextName must be a non-empty string, got {name!r}")
    if spliced(name):
        raise FlagConfigError(
            f"{where}: contextName {name!r} holds a double quote or ends with a backslash, "
            "which Unleash splices into its rule; pytest-chaos cannot evaluate it"
        )
    where = f"{where} constraint on {name!r}"
    for flag in ("inverted", "caseInsensitive"):
        if not isinstance(constraint.get(flag, False), bool):
            raise FlagConfigError(f"{where}: {flag} must be true or false")
    test = _value_test(constraint, where)
    if test is None:
        return _false
    negate = constraint.get("operator") == "NOT_IN"
    inverted = constraint.get("inverted", False) is True
    missing = negate != inverted  # the answer when the context lacks the field
    flip = negate != inverted  # a present value's test result is negated
    now = name == "currentTime"

    def predicate(context: Context) -> bool:
        # context_value, inlined: this runs for every constraint of every evaluation
        actual = context.get(name)
        if actual is None:
            properties = context.get("properties")
            actual = properties.get(name) if properties else None
            if actual is None:
                if not now:
                    return missing
                actual = datetime.now(timezone.utc).isoformat()
        if actual.__class__ is not str:
            actual = str(actual)
        return test(actual) != flip

    return predicate


def compile_constraints(constraints: Sequence[object], where: str) -> Predicate | None:
    """All constraints must hold; None when there are none (the fast path skips the call)."""
    compiled = [compile_constraint(c, where) for c in constraints]
    if not compiled:
        return None
    if len(compiled) == 1:
        return compiled[0]
    checks = tuple(compiled)

    def every(context: Context) -> bool:
        for check in checks:  # noqa: SIM110 - a loop is faster here than all() over a generator
            if not check(context):
                return False
        return True

    return every
