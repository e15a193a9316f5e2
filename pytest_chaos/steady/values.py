"""How tolerances read and show the values that probes return: numbers (not bools), NaN,
a probe result's status and a field picked by ``target``, text from bytes, equality as
Chaos Toolkit has it (1 is not True), and a value shown short in an account."""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

Number = int | float | Decimal
#: How much of a value a message shows.
SHOW = 200


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def is_nan(value: object) -> bool:
    if isinstance(value, Decimal):
        return value.is_nan()
    return isinstance(value, float) and math.isnan(value)


def check_bounds(where: str, low: object, high: object) -> None:
    for which, bound in (("lower", low), ("upper", high)):
        if not is_number(bound):
            raise ValueError(
                f"{where}: the {which} bound {show(bound)} is not a number; "
                "use an int, float or Decimal"
            )
        if is_nan(bound):
            raise ValueError(f"{where}: the {which} bound is {bound!r}; use a number")
    if low > high:  # type: ignore[operator]  # both are numbers, checked above
        raise ValueError(
            f"{where}: the lower bound {number_text(low)} is above the upper bound {number_text(high)}; "
            "nothing would be within it"
        )


def check_target(where: str, target: object) -> None:
    if target is not None and (not isinstance(target, str) or not target):
        raise TypeError(f"{where}: target={target!r}; use the name of a key, or None")


def has_status(value: object) -> bool:
    return isinstance(value, Mapping) and "status" in value


def pick(value: Any, target: str | None) -> Any:
    """``value[target]`` when the value is a dict that has it, else the value itself."""
    if target is not None and isinstance(value, Mapping):
        return value.get(target, value)
    return value


def as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an odd __eq__ (arrays, say) is not a match
        return False


def member(item: Any, values: Iterable[Any]) -> bool:
    return any(equal(item, value) for value in values)


def inline_flags(pattern: re.Pattern[Any]) -> object:
    """A compiled pattern's source, with the flags it was compiled with written inline (a
    bytes pattern's source as is, for the caller to refuse)."""
    if not isinstance(pattern.pattern, str):
        return pattern.pattern
    given = pattern.flags & ~re.compile(pattern.pattern).flags
    letters = "".join(
        letter
        for flag, letter in (
            (re.ASCII, "a"),
            (re.IGNORECASE, "i"),
            (re.MULTILINE, "m"),
            (re.DOTALL, "s"),
            (re.VERBOSE, "x"),
        )
        if given & flag
    )
    return f"(?{letters}){pattern.pattern}" if letters else pattern.pattern


def callable_name(predicate: Callable[..., object]) -> str:
    name = getattr(predicate, "__qualname__", None) or getattr(predicate, "__name__", None)
    return name if isinstance(name, str) else repr(predicate)


def targeted(target: str | None, text: str) -> str:
    return text if target is None else f"{target} {text}"


def with_target(form: dict[str, Any], target: str | None) -> dict[str, Any]:
    if target is not None:
        form["target"] = target
    return form


def number_text(value: object) -> str:
    return str(value) if isinstance(value, Decimal) else repr(value)


def plain(value: Number) -> int | float:
    """A bound as a JSON number."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOW else text[: SHOW - 3] + "..."


def jsonpath_parser() -> Callable[[str], Any]:
    """jsonpath-ng's extended parser, imported only when a JSONPath tolerance is made."""
    try:
        module = importlib.import_module("jsonpath_ng.ext")
    except ImportError as exc:
        raise ImportError(
            "a JSONPath tolerance needs the jsonpath-ng package: "
            "pip install 'pytest-chaos[jsonpath]'"
        ) from exc
    parse: Callable[[str], Any] = module.parse
    return parse
