"""Checks of arguments that many modules take, with one wording for a bad value."""

from __future__ import annotations

import math


def seconds(name: str, value: object, *, allow_zero: bool) -> float:
    """``value`` as seconds (finite; more than 0, or 0 too with ``allow_zero``), or a
    ValueError naming ``name`` and the value."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        bound = "0 or more" if allow_zero else "more than 0"
        raise ValueError(f"{name}={value!r}: use a number of seconds, {bound}")
    return float(value)
