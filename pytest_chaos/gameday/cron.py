"""Cron expressions checked field by field (five fields, names, ranges, steps, macros), as
a game-day plan's schedule gives them, with an error that names the bad field."""

from __future__ import annotations

import re
from collections.abc import Callable

from pytest_chaos.core.errors import ChaosError

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: Each field: its name, lowest and highest value, and the names it accepts (from ``low``).
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_ITEM = re.compile(r"(?P<range>\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>[0-9]+))?\Z")


class ScheduleError(ChaosError, ValueError):
    """A cron expression that is not valid, or a plan that cannot be scheduled."""


def normalize(expression: str) -> str:
    """``expression`` as five space-separated fields (a macro such as ``@daily`` spelled
    out), or ScheduleError naming the bad field and what it allows."""
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ScheduleError(
                f"unknown macro {text!r}; use five fields or one of {', '.join(MACROS)}"
            )
        return MACROS[text.lower()]
    fields = text.split()
    if len(fields) != len(FIELDS):
        raise ScheduleError(
            f"{len(fields)} fields; use 5: minute hour day-of-month month day-of-week, "
            "such as '0 9 * * 1' (09:00 UTC on Mondays)"
        )
    for value, spec in zip(fields, FIELDS, strict=True):
        for item in value.split(","):
            _check_item(item, value, *spec)
    return " ".join(fields)


def _check_item(
    item: str, value: str, name: str, low: int, high: int, names: tuple[str, ...]
) -> None:
    def bad(problem: str) -> ScheduleError:
        spelled = f" or {names[0].upper()}-{names[-1].upper()}" if names else ""
        return ScheduleError(
            f"{name} field {value!r}: {problem}; use *, a value from {low} to {high}{spelled}, "
            "a range a-b, a step */n or a-b/n, or a list of these separated by commas"
        )

    match = _ITEM.match(item)
    if match is None:
        raise bad(f"{item!r} is not a value, range or step")
    bounds = match["range"]
    if bounds == "*":
        first, last = low, high
    else:
        start, _, end = bounds.partition("-")
        first = _number(start, low, high, names, bad)
        last = _number(end, low, high, names, bad) if end else first
        if first > last:
            raise bad(f"range {bounds!r} runs backwards")
    if match["step"] is not None:
        step = int(match["step"])
        if step == 0 or step > high - low + 1:
            raise bad(f"step /{step} is out of range")
        if bounds != "*" and "-" not in bounds:
            raise bad(f"a step needs * or a range before it, not {bounds!r}")


def _number(
    text: str, low: int, high: int, names: tuple[str, ...], bad: Callable[[str], ScheduleError]
) -> int:
    if text.isdigit():
        number = int(text)
    elif text.lower() in names:
        number = names.index(text.lower()) + low
    else:
        number = -1
    if not low <= number <= high:
        raise bad(f"{text!r} is out of range")
    return number
