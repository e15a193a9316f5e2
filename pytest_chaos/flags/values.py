"""Unleash's parsing of numbers, dates and versions, to the character.

Unleash's SDKs (UnleashClient 6.x evaluates with the Yggdrasil engine) read a context
value the way Rust reads it: a number as ``f64::from_str`` does, a date as chrono's
relaxed RFC 3339 reader does, a version as the ``semver`` crate does. A constraint's own
value is read by Yggdrasil's rule grammar first, and that grammar, not the operator,
decides whether it is compared as a date, a version or a number. Each function here
answers None where Unleash's parser fails, so the caller can evaluate exactly as Unleash.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pytest_chaos.core.errors import ChaosError

__all__ = ["constraint_family", "parse_date", "parse_number", "parse_semver"]

DateKey = tuple[int, int]
"""A date as (UTC seconds since the epoch, nanoseconds; 1e9 and more in a leap second)."""

SemverKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]
"""A version ordered by SemVer precedence (build metadata ignored)."""

# --- numbers: Rust's f64::from_str ---------------------------------------------------------

_RUST_FLOAT = re.compile(
    r"[+-]?(?:(?i:inf|infinity|nan)|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
)


@lru_cache(maxsize=4096)  # context values repeat (versions, ages...): parse each once
def parse_number(text: str) -> float | None:
    """``text`` as Rust's ``f64::from_str`` reads it: no spaces, ``_`` or hex; ``inf``,
    ``infinity`` and ``nan`` in any case; ``.5`` and ``5.``; None when Rust refuses it."""
    if _RUST_FLOAT.fullmatch(text) is None:
        return None
    return float(text)


# --- dates: chrono's DateTime<FixedOffset>::from_str ---------------------------------------

_RUST_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_DIGITS = frozenset("0123456789")
_MAX_YEAR = 262_142  # chrono's NaiveDate range
_MIN_YEAR = -262_143


def _trim(text: str, at: int) -> int:
    """Rust's ``trim_start``: skip Unicode White_Space (not Python's ``isspace``)."""
    while at < len(text) and text[at] in _RUST_WHITESPACE:
        at += 1
    return at


def _digits(text: str, at: int, most: int) -> tuple[int, int] | None:
    """chrono's ``scan::number``: one to ``most`` ASCII digits; (value, end) or None."""
    end = at
    while end < len(text) and end - at < most and text[end] in _DIGITS:
        end += 1
    return None if end == at else (int(text[at:end]), end)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _month_days(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _offset(text: str, at: int) -> tuple[int, int] | None:
    """chrono's offset: ``UTC``, ``Z``/``z`` or a sign (``+``, ``-``, U+2212), two hour
    digits, colons or spaces, two minute digits; (seconds east, end) or None."""
    if text[at : at + 3].upper() == "UTC":
        return 0, at + 3
    if text[at : at + 1] in ("Z", "z"):
        return 0, at + 1
    sign = text[at : at + 1]
    if sign not in ("+", "-", "\u2212"):
        return None
    at += 1
    hours = text[at : at + 2]
    if len(hours) < 2 or not set(hours) <= _DIGITS:
        return None
    at += 2
    while at < len(text) and (text[at] == ":" or text[at] in _RUST_WHITESPACE):
        at += 1
    minutes = text[at : at + 2]
    if len(minutes) < 2 or not set(minutes) <= _DIGITS or minutes[0] > "5":
        return None
    seconds = int(hours) * 3600 + int(minutes) * 60
    if seconds >= 86_400:
        return None
    return (-seconds if sign != "+" else seconds), at + 2


def _year(text: str, at: int) -> tuple[int, int] | None:
    """chrono's signed year: up to four digits, or a sign and any number of them."""
    at = _trim(text, at)
    sign = text[at : at + 1]
    if sign in ("+", "-"):
        scanned = _digits(text, at + 1, 1_000)
        if scanned is None:
            return None
        return (-scanned[0] if sign == "-" else scanned[0]), scanned[1]
    return _digits(text, at, 4)


def _fields(text: str) -> tuple[list[int], int, int, int] | None:
    """Year, month, day, hour, minute, second; nanoseconds; offset; end. None if malformed."""
    year = _year(text, 0)
    if year is None:
        return None
    values, at = [year[0]], year[1]
    for separator in ("-", "-", "T", ":", ":"):
        if separator == "T":
            if text[at : at + 1] not in ("T", "t", " "):
                return None
            at += 1
        else:
            at = _trim(text, at)
            if text[at : at + 1] != separator:
                return None
            at += 1
        scanned = _digits(text, _trim(text, at), 2)
        if scanned is None:
            return None
        values.append(scanned[0])
        at = scanned[1]
    nanos = 0
    if text[at : at + 1] == ".":
        end = at + 1
        while end < len(text) and text[end] in _DIGITS:
            end += 1
        if end == at + 1:
            return None
        nanos = int(text[at + 1 : min(end, at + 10)].ljust(9, "0"))
        at = end
    offset = _offset(text, _trim(text, at))
    if offset is None:
        return None
    return values, nanos, offset[0], offset[1]


@lru_cache(maxsize=4096)
def parse_date(text: str) -> DateKey | None:
    """``text`` as chrono's ``DateTime<FixedOffset>::from_str`` reads it, as a sort key.

    RFC 3339 and what chrono's relaxed reader adds: ``t`` or a space for ``T``, spaces
    around fields, any number of fraction digits, ``UTC``, ``+hhmm``, a leap second 60.
    A date without an offset, or a date alone, is refused (None), as chrono refuses it.
    """
    fields = _fields(text)
    if fields is None:
        return None
    (year, month, day, hour, minute, second), nanos, offset, end = fields
    if _trim(text, end) != len(text):
        return None
    if not _MIN_YEAR <= year <= _MAX_YEAR or not 1 <= month <= 12:
        return None
    if not 1 <= day <= _month_days(year, month) or hour > 23 or minute > 59 or second > 60:
        return None
    if second == 60:  # a leap second: the 59th, one second of nanoseconds further on
        second, nanos = 59, nanos + 1_000_000_000
    days = _days_from_civil(year, month, day)
    return days * 86_400 + hour * 3600 + minute * 60 + second - offset, nanos


# --- versions: the semver crate ------------------------------------------------------------

_NUMERIC = r"(?:0|[1-9][0-9]*)"
_IDENTIFIER = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"({_NUMERIC})\.({_NUMERIC})\.({_NUMERIC})"
    rf"(?:-({_IDENTIFIER}(?:\.{_IDENTIFIER})*))?(?:\+{_IDENTIFIER}(?:\.{_IDENTIFIER})*)?",
    re.ASCII,
)
_U64 = 2**64


@lru_cache(maxsize=4096)
def parse_semver(text: str) -> SemverKey | None:
    """``text`` as the ``semver`` crate reads it, as a precedence key; None when refused.

    Strict SemVer 2.0: no ``v``, no spaces, no leading zeros in numbers or in numeric
    pre-release identifiers, numbers within 64 bits. Build metadata is read and ignored.
    """
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    numbers = int(major), int(minor), int(patch)
    if any(number >= _U64 for number in numbers):
        return None
    if pre is None:
        return (*numbers, 1, ())
    parts = []
    for part in pre.split("."):
        if part.isdigit():
            if len(part) > 1 and part[0] == "0":
                return None
            parts.append((0, int(part), ""))
        else:
            parts.append((1, 0, part))
    return (*numbers, 0, tuple(parts))


# --- constraint values: Yggdrasil's rule grammar -------------------------------------------

_GRAMMAR = (
    (
        "date",
        re.compile(
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3})?"
            r"(?:Z|[+-][0-9]{2}:[0-9]{2})"
        ),
    ),
    (
        "semver",
        re.compile(
            r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
            r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
        ),
    ),
    ("number", re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")),
)
_PARSERS: dict[str, Any] = {"date": parse_date, "semver": parse_semver, "number": parse_number}


class SplicedValue(ChaosError, ValueError):
    """A constraint value that would change the shape of Unleash's rule, not just a value."""


def constraint_family(value: str) -> tuple[str, Any] | None:
    """How Unleash's rule grammar reads an ordered constraint's value: (family, key).

    The grammar tries a date, then a version, then a number, whatever the operator;
    spaces and tabs around the value are skipped. None when no family reads the whole
    value or its parser then refuses it: Unleash's rule fails and the feature is off.
    Raises :class:`SplicedValue` when the rest would be read as more of the rule.
    """
    text = value.strip(" \t")
    for family, pattern in _GRAMMAR:
        match = pattern.match(text)
        if match is None:
            continue
        rest = text[match.end() :]
        if rest:
            if rest[0] in " \t" or ")" in rest:
                raise SplicedValue(rest)
            return None
        key = _PARSERS[family](match.group())
        return None if key is None else (family, key)
    return None
