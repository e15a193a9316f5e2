"""Tolerances: what a probe's value must be for the steady state to hold.

They follow Chaos Toolkit's semantics (``chaoslib.hypothesis.within_tolerance``), so a
tolerance copied from an experiment file means here what it means there, and each one writes
itself back in Chaos Toolkit's JSON form for the journal:

- ``200``, ``"ok"``, ``True``: equal to the value. An int tolerance against a dict with a
  ``"status"`` key (an HTTP answer) compares the status.
- ``[low, high]``: the value lies between them, both included. Against a dict with a
  ``"status"``, Chaos Toolkit checks that the status is one of the two, not between them.
- ``[a, b, c]``, ``[a]``: the value (or the dict's ``"status"``) is one of them.
- ``{"type": "regex", "pattern": ..., "target": ...}``: ``re.search`` finds the pattern in
  the value, or in ``value[target]`` when the value is a dict that has it.
- ``{"type": "jsonpath", "path": ..., "expect": ..., "count": ..., "target": ...}``: the
  path's matches in the value (bytes and str are decoded as JSON first) equal ``expect``
  (a list compares the list of matches, anything else the single match), or number
  ``count``; with neither, the path matches something. JSONPath is jsonpath-ng 1.11+ (the
  ``jsonpath`` extra), Chaos Toolkit's is jsonpath2: both read ``[*]`` on an object as its
  values; they differ in filters (``[?(@.x > 1)]``) and quoted keys.
- ``{"type": "range", "range": [low, high], "target": ...}``: the value, read as a
  ``Decimal`` (so ``"0.5"`` counts), lies between them, both included.
- a callable: it returns something true for the value. Chaos Toolkit's ``"probe"`` type
  names a function to import; here you pass the function.

Every tolerance is validated when it is made, never when it checks: a check only answers
True or False (a predicate that raises is a False, as a failing probe tolerance is in Chaos
Toolkit), and :meth:`Tolerance.evaluate` says what was seen.

    from pytest_chaos.steady.tolerance import between, jsonpath, tolerance

    tolerance(200).check({"status": 200, "body": "..."})          # True
    between(0, 0.01).describe()                                   # 'between 0 and 0.01'
    jsonpath("$.status", expect="up", target="body").to_json()    # Chaos Toolkit's dict
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, final

from pytest_chaos.core.activity import provider_of
from pytest_chaos.steady.values import (
    Number,
    as_text,
    callable_name,
    check_bounds,
    check_target,
    equal,
    has_status,
    inline_flags,
    is_int,
    is_number,
    jsonpath_parser,
    member,
    number_text,
    pick,
    plain,
    show,
    targeted,
    with_target,
)

__all__ = [
    "Between",
    "Exact",
    "InRange",
    "JsonPath",
    "OneOf",
    "Regex",
    "Satisfies",
    "Tolerance",
    "ToleranceVerdict",
    "between",
    "exact",
    "jsonpath",
    "one_of",
    "regex",
    "satisfies",
    "tolerance",
    "within_tolerance",
]

#: What :func:`tolerance` accepts, for error messages.
_ACCEPTED = (
    "a Tolerance, a bool, int, float or str (exact), a list of two numbers (inclusive range), "
    "another list (membership), a dict with 'type' 'regex', 'jsonpath' or 'range', a compiled "
    "regular expression, or a callable"
)


class _Missing(Enum):
    """The type of the "not given" marker, for an argument where None is a real value."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


_MISSING = _Missing.MISSING


@final
@dataclass(frozen=True)
class ToleranceVerdict:
    """Whether a value was within a tolerance, and what was seen (``detail``) for the account
    of a deviation: the value, the JSONPath matches, or the error a predicate raised."""

    ok: bool
    detail: str

    def __bool__(self) -> bool:
        return self.ok


class Tolerance(ABC):
    """What a value must be. Immutable and comparable; made by :func:`tolerance` or one of the
    helpers (:func:`exact`, :func:`between`, :func:`one_of`, :func:`regex`, :func:`jsonpath`,
    :func:`satisfies`), which reject bad input at once."""

    __slots__ = ()

    @abstractmethod
    def evaluate(self, value: Any) -> ToleranceVerdict:
        """Judge ``value``, saying what was seen; never raises."""

    def check(self, value: Any) -> bool:
        """True when ``value`` is within this tolerance."""
        return self.evaluate(value).ok

    @abstractmethod
    def describe(self) -> str:
        """What is allowed, in words, for failure messages: ``== 200``, ``one of [200, 204]``."""

    @abstractmethod
    def to_json(self) -> Any:
        """Chaos Toolkit's JSON form of this tolerance, for a journal; :func:`tolerance` reads
        it back into an equal tolerance (a callable's form is a best effort and is not read)."""

    def __str__(self) -> str:
        return self.describe()


# --- the kinds -------------------------------------------------------------------------------


@final
@dataclass(frozen=True, eq=False)
class Exact(Tolerance):
    """Equal to ``value``; an int (not a bool) against a dict with a ``"status"`` compares the
    status, as Chaos Toolkit does for HTTP answers."""

    value: bool | int | float | str

    def __post_init__(self) -> None:
        if not isinstance(self.value, (bool, int, float, str)):
            raise TypeError(
                f"exact(): {show(self.value)} is a {type(self.value).__name__}; use a bool, "
                "int, float or str (one_of(...) for several values, satisfies(...) for others)"
            )
        if isinstance(self.value, float) and math.isnan(self.value):
            raise ValueError("exact(): nan equals nothing, not even nan; use a number")

    def _key(self) -> tuple[str, Any]:
        # 1, 1.0 and True compare equal in Python but not here: only an int has the status rule.
        value = self.value
        kind = next(t.__name__ for t in (bool, int, float, str) if isinstance(value, t))
        return kind, value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Exact):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((Exact, self._key()))

    def evaluate(self, value: Any) -> ToleranceVerdict:
        expected = self.value
        if is_int(expected) and has_status(value):
            status = value["status"]
            return ToleranceVerdict(equal(status, expected), f"got status {show(status)}")
        return ToleranceVerdict(equal(value, expected), f"got {show(value)}")

    def describe(self) -> str:
        return f"== {self.value!r}"

    def to_json(self) -> Any:
        return self.value


@final
@dataclass(frozen=True)
class Between(Tolerance):
    """Between ``low`` and ``high``, both included: Chaos Toolkit's list of two numbers.
    Against a dict with a ``"status"`` the status must be one of the two, as there; for a
    range of statuses use ``between(200, 299, target="status")``."""

    low: Number
    high: Number

    def __post_init__(self) -> None:
        check_bounds("between()", self.low, self.high)

    def evaluate(self, value: Any) -> ToleranceVerdict:
        if has_status(value):
            status = value["status"]
            return ToleranceVerdict(
                member(status, (self.low, self.high)),
                f"got status {show(status)} (a list of two matches a status by membership)",
            )
        try:
            ok = bool(self.low <= value <= self.high)
        except TypeError:
            return ToleranceVerdict(False, f"got {show(value)}, which is not a number")
        return ToleranceVerdict(ok, f"got {show(value)}")

    def describe(self) -> str:
        return f"between {number_text(self.low)} and {number_text(self.high)}"

    def to_json(self) -> Any:
        return [plain(self.low), plain(self.high)]


@final
@dataclass(frozen=True)
class InRange(Tolerance):
    """Chaos Toolkit's ``"range"`` type: the value (or ``value[target]`` when the value is a
    dict that has it), read as a ``Decimal``, is between ``low`` and ``high``, both
    included; what does not read as a number is out of range."""

    low: Number
    high: Number
    target: str | None = None

    def __post_init__(self) -> None:
        check_bounds("between()", self.low, self.high)
        check_target("between()", self.target)

    def evaluate(self, value: Any) -> ToleranceVerdict:
        picked = pick(value, self.target)
        try:
            number = Decimal(picked)
            ok = Decimal(self.low) <= number <= Decimal(self.high)
        except (ArithmeticError, TypeError, ValueError):  # not a number, or NaN
            return ToleranceVerdict(False, f"got {show(picked)}, which is not a number")
        return ToleranceVerdict(ok, f"got {show(picked)}")

    def describe(self) -> str:
        return targeted(
            self.target, f"between {number_text(self.low)} and {number_text(self.high)}"
        )

    def to_json(self) -> Any:
        return with_target(
            {"type": "range", "range": [plain(self.low), plain(self.high)]}, self.target
        )


@final
@dataclass(frozen=True)
class OneOf(Tolerance):
    """Equal to one of ``values`` (the status, for a dict with a ``"status"``): Chaos
    Toolkit's list of other than two items. Repeated values are dropped, in order."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        values: Any = self.values
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise TypeError(
                f"one_of(): {show(values)} is a {type(values).__name__}; "
                "give a list or tuple of the allowed values"
            )
        unique: list[Any] = []
        for item in values:
            if not member(item, unique):
                unique.append(item)
        if not unique:
            raise ValueError("one_of(): no values given, so nothing would be within it")
        object.__setattr__(self, "values", tuple(unique))

    def evaluate(self, value: Any) -> ToleranceVerdict:
        if has_status(value):
            status = value["status"]
            return ToleranceVerdict(member(status, self.values), f"got status {show(status)}")
        return ToleranceVerdict(member(value, self.values), f"got {show(value)}")

    def describe(self) -> str:
        return f"one of {list(self.values)!r}"

    def to_json(self) -> Any:
        items = list(self.values)
        # A list of two is a range in Chaos Toolkit: list one value twice to keep membership.
        return [*items, items[0]] if len(items) == 2 else items


@final
@dataclass(frozen=True)
class Regex(Tolerance):
    """``re.search`` finds ``pattern`` in the value, or in ``value[target]`` when the value is
    a dict that has it. Bytes are decoded as UTF-8; anything else that is not a string is
    outside. A compiled pattern's flags become inline flags, so its JSON form keeps them."""

    pattern: str
    target: str | None = None
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern: Any = self.pattern
        if isinstance(pattern, re.Pattern):
            pattern = inline_flags(pattern)
        if not isinstance(pattern, str):
            raise TypeError(
                f"regex(): the pattern {show(pattern)} is a {type(pattern).__name__}; "
                "use a str or a compiled str pattern"
            )
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"regex(): {pattern!r} is not a valid regular expression: {exc}"
            ) from None
        check_target("regex()", self.target)
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "_compiled", compiled)

    def evaluate(self, value: Any) -> ToleranceVerdict:
        picked = pick(value, self.target)
        text = as_text(picked)
        if text is None:
            return ToleranceVerdict(False, f"got {show(picked)}, which is not text")
        return ToleranceVerdict(self._compiled.search(text) is not None, f"got {show(text)}")

    def describe(self) -> str:
        return targeted(self.target, f"matching /{self.pattern}/")

    def to_json(self) -> Any:
        return with_target({"type": "regex", "pattern": self.pattern}, self.target)


@final
@dataclass(frozen=True)
class JsonPath(Tolerance):
    """The matches of the JSONPath ``path`` in the value (or ``value[target]`` when the value
    is a dict that has it; bytes and str are decoded as JSON when they are JSON) equal
    ``expect`` (kept as the list of expected matches), or number ``count``; with neither,
    the path matches something. Needs jsonpath-ng."""

    path: str
    expect: Any = _MISSING
    count: int | None = None
    target: str | None = None
    _parsed: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        path: Any = self.path
        if not isinstance(path, str):
            raise TypeError(
                f"jsonpath(): the path {show(path)} is a {type(path).__name__}; use a str"
            )
        if not path.strip():
            raise ValueError(f"jsonpath(): the path {path!r} is empty; use one such as '$.status'")
        parse = jsonpath_parser()
        try:
            parsed = parse(path)
        except Exception as exc:  # jsonpath-ng raises its own errors, and others on odd input
            raise ValueError(f"jsonpath(): {path!r} is not a valid JSONPath: {exc}") from None
        expect = self.expect
        if expect is not _MISSING:
            expect = tuple(expect) if isinstance(expect, (list, tuple)) else (expect,)
        count: Any = self.count
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int):
                raise TypeError(f"jsonpath(): count={count!r}; use an int, 0 or more")
            if count < 0:
                raise ValueError(f"jsonpath(): count={count!r}; use an int, 0 or more")
            if expect is not _MISSING and len(expect) != count:
                raise ValueError(
                    f"jsonpath(): count={count!r} contradicts expect={list(expect)!r}, "
                    f"which is {len(expect)} match(es); give one or make them agree"
                )
        check_target("jsonpath()", self.target)
        object.__setattr__(self, "expect", expect)
        object.__setattr__(self, "_parsed", parsed)

    def evaluate(self, value: Any) -> ToleranceVerdict:
        document = pick(value, self.target)
        if isinstance(document, (bytes, bytearray)):
            try:
                document = bytes(document).decode("utf-8")
            except UnicodeDecodeError:
                return ToleranceVerdict(False, f"got {show(document)}, which is not UTF-8")
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError:
                pass  # not JSON: the path searches the string itself, as in Chaos Toolkit
        try:
            found = [match.value for match in self._parsed.find(document)]
        except Exception as exc:
            return ToleranceVerdict(False, f"{self.path} failed on {show(document)}: {exc}")
        if self.expect is not _MISSING:
            ok = equal(found, list(self.expect))
        elif self.count is not None:
            ok = len(found) == self.count
        else:
            ok = bool(found)
        return ToleranceVerdict(ok, f"found {show(found)}")

    def describe(self) -> str:
        path = self.path if self.target is None else f"{self.path} of {self.target}"
        if self.expect is not _MISSING:
            return f"{path} == {list(self.expect)!r}"
        if self.count is not None:
            return f"{path} has {self.count} match{'' if self.count == 1 else 'es'}"
        return f"{path} has a match"

    def to_json(self) -> Any:
        form: dict[str, Any] = {"type": "jsonpath", "path": self.path}
        if self.expect is not _MISSING:
            form["expect"] = list(self.expect)
        if self.count is not None:
            form["count"] = self.count
        return with_target(form, self.target)


@final
@dataclass(frozen=True)
class Satisfies(Tolerance):
    """``predicate(value)`` returns something true. A predicate that raises counts as outside
    the tolerance (its error is in the verdict's detail), as a failing probe tolerance does
    in Chaos Toolkit. ``name`` defaults to the predicate's qualified name."""

    predicate: Callable[[Any], object]
    name: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.predicate):
            raise TypeError(
                f"satisfies(): {show(self.predicate)} is not callable; "
                "give a function of the value that returns true when it is within tolerance"
            )
        name: Any = self.name
        if name is None:
            name = callable_name(self.predicate)
        elif not isinstance(name, str) or not name:
            raise TypeError(f"satisfies(): name={name!r}; use a non-empty str")
        object.__setattr__(self, "name", name)

    def evaluate(self, value: Any) -> ToleranceVerdict:
        try:
            result = self.predicate(value)
            ok = bool(result)
        except Exception as exc:
            return ToleranceVerdict(False, f"{self.name} raised {type(exc).__name__}: {exc}")
        return ToleranceVerdict(ok, f"{self.name} returned {show(result)}")

    def describe(self) -> str:
        return f"accepted by {self.name}"

    def to_json(self) -> Any:
        # Chaos Toolkit calls a tolerance probe with the value as ``value=``
        provider = provider_of(self.predicate, called_with=("value",))
        return {"type": "probe", "name": self.name, "provider": provider}


# --- making them -----------------------------------------------------------------------------


def exact(value: bool | int | float | str) -> Tolerance:
    """Equal to ``value`` (an int also matches a dict's ``"status"``)."""
    return Exact(value)


def between(low: Number, high: Number, *, target: str | None = None) -> Tolerance:
    """Between ``low`` and ``high``, both included. Without ``target`` this is Chaos
    Toolkit's list of two; with it, the ``"range"`` type, which reads ``value[target]`` as a
    ``Decimal`` (so ``between(200, 299, target="status")`` is a range of HTTP statuses)."""
    if target is None:
        return Between(low, high)
    return InRange(low, high, target)


def one_of(values: Iterable[Any]) -> Tolerance:
    """Equal to one of ``values`` (a dict's ``"status"`` is compared instead)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        return OneOf(values)  # type: ignore[arg-type]  # rejected there, with the message
    return OneOf(tuple(values))


def regex(pattern: str | re.Pattern[str], *, target: str | None = None) -> Tolerance:
    """``re.search`` finds ``pattern`` in the value, or in ``value[target]``."""
    return Regex(pattern, target)  # type: ignore[arg-type]  # a Pattern becomes its str


def jsonpath(
    path: str, *, expect: Any = _MISSING, count: int | None = None, target: str | None = None
) -> Tolerance:
    """The JSONPath ``path``'s matches equal ``expect`` (a list is the list of matches; any
    other value, including None, the one match), or number ``count``; with neither, the path
    matches something. Needs jsonpath-ng: ``pip install 'pytest-chaos[jsonpath]'``."""
    return JsonPath(path, expect, count, target)


def satisfies(predicate: Callable[[Any], object], *, name: str | None = None) -> Tolerance:
    """``predicate(value)`` returns something true, without raising."""
    return Satisfies(predicate, name)


def tolerance(spec: Any) -> Tolerance:
    """Any accepted form as a :class:`Tolerance`: a Tolerance as is, Chaos Toolkit's forms
    (``200``, ``[0, 1]``, ``[200, 204, 301]``, ``{"type": "regex", ...}``), a compiled
    regular expression, or a callable. Raises ValueError or TypeError, naming the bad value,
    for anything it cannot make sense of."""
    if isinstance(spec, Tolerance):
        return spec
    if isinstance(spec, (bool, int, float, str)):
        return Exact(spec)
    if isinstance(spec, (list, tuple)):
        if len(spec) == 2:
            if not all(is_number(bound) for bound in spec):
                raise ValueError(
                    f"tolerance {show(spec)}: a list of two values is an inclusive range "
                    "[low, high] and needs two numbers; for either of two values use "
                    f"one_of(...) (in JSON, list one of them twice: {show([*spec, spec[0]])})"
                )
            return Between(spec[0], spec[1])
        return OneOf(tuple(spec))
    if isinstance(spec, Mapping):
        return _from_mapping(spec)
    if isinstance(spec, re.Pattern):
        return Regex(spec)  # type: ignore[arg-type]  # a Pattern becomes its str
    if callable(spec):
        return Satisfies(spec)
    raise TypeError(f"tolerance {show(spec)} is a {type(spec).__name__}; use {_ACCEPTED}")


def within_tolerance(spec: Any, value: Any) -> bool:
    """True when ``value`` is within the tolerance ``spec`` (any form :func:`tolerance`
    accepts): Chaos Toolkit's ``within_tolerance``, without its configuration."""
    return tolerance(spec).check(value)


_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required keys, optional keys)
    "regex": (("pattern",), ("target",)),
    "jsonpath": (("path",), ("expect", "count", "target")),
    "range": (("range",), ("target",)),
}


def _from_mapping(spec: Mapping[Any, Any]) -> Tolerance:
    """Chaos Toolkit's dict forms; unknown keys are refused, since a misspelt ``expect`` would
    otherwise quietly loosen the tolerance."""
    kind = spec.get("type")
    if kind == "probe":
        raise ValueError(
            f"tolerance {show(spec)}: a 'probe' tolerance names a function for Chaos Toolkit "
            "to import; pass the callable itself instead (satisfies(func) or tolerance(func))"
        )
    if not isinstance(kind, str) or kind not in _KEYS:
        raise ValueError(
            f"tolerance {show(spec)}: unknown type {kind!r}; use 'regex', 'jsonpath' or "
            "'range' (or pass a callable where Chaos Toolkit has 'probe')"
        )
    required, optional = _KEYS[kind]
    allowed = ("type", *required, *optional)
    for key in spec:
        if key not in allowed:
            raise ValueError(
                f"tolerance {show(spec)}: unknown key {key!r} for type {kind!r}; "
                f"use {', '.join(map(repr, allowed))}"
            )
    for key in required:
        if key not in spec:
            raise ValueError(f"tolerance {show(spec)}: a {kind!r} tolerance needs a {key!r} key")
    target = spec.get("target")
    if kind == "regex":
        return Regex(spec["pattern"], target)
    if kind == "jsonpath":
        return JsonPath(spec["path"], spec.get("expect", _MISSING), spec.get("count"), target)
    bounds = spec["range"]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise ValueError(
            f"tolerance {show(spec)}: 'range' is {show(bounds)}; use a list of two numbers "
            "[low, high]"
        )
    return InRange(bounds[0], bounds[1], target)


# --- helpers ---------------------------------------------------------------------------------
