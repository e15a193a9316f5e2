"""The explorer's settings, and the parsers of their values (ValueError names what is
allowed; the plugin turns it into a usage error naming the option)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import final

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_LATENCY_MS = 2000
DEFAULT_DEPTH = 2
MAX_DEPTH = 4
_DURATION = re.compile(r"\A(\d+(?:\.\d+)?)(s|m|h)\Z")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


@final
@dataclass(frozen=True)
class Budget:
    """How much exploring to do: ``runs`` fault runs, or ``seconds`` of wall time."""

    runs: int | None = None
    seconds: float | None = None

    def describe(self) -> str:
        if self.runs is not None:
            return f"{self.runs} runs"
        if self.seconds is not None:
            return f"{self.seconds:g} s"
        return "unlimited"


@final
@dataclass(frozen=True)
class ExploreSettings:
    enabled: bool = False
    budget: Budget = Budget()
    min_held: float | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    latency_ms: int = DEFAULT_LATENCY_MS
    depth: int = DEFAULT_DEPTH
    exhaustive: bool = False


def budget(value: str) -> Budget:
    """``200`` (runs), or ``90s``, ``10m``, ``1.5h`` (wall time)."""
    text = value.strip()
    if text.isdigit() and int(text) > 0:
        return Budget(runs=int(text))
    found = _DURATION.match(text)
    if found is not None and float(found.group(1)) > 0:
        return Budget(seconds=float(found.group(1)) * _UNIT_S[found.group(2)])
    raise ValueError(
        f"{value!r}: expected a number of runs (200) or a duration (90s, 10m, 1.5h), more than 0"
    )


def percent(value: str) -> float:
    """A share from 0 to 100."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number <= 100:
        raise ValueError(f"{value!r}: expected a percentage from 0 to 100")
    return number


def seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{value!r}: expected a number of seconds, more than 0")
    return number


def whole(value: str, low: int, high: int) -> int:
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise ValueError(f"{value!r}: expected a whole number from {low} to {high}")
    return int(value)
