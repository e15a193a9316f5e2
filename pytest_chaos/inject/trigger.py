"""When an in-process fault strikes: at a rate, or on every Nth matching call, optionally only
for the first N calls or the first T seconds. Shared by function faults and HTTP faults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from pytest_chaos.core.checks import seconds

if TYPE_CHECKING:
    from pytest_chaos.inject.draws import CallDraws


@final
@dataclass(frozen=True)
class Trigger:
    """Which matching calls a fault hits.

    ``rate`` is the chance that a call is hit (a draw named by the fault and the call);
    ``every=N`` hits calls N, 2N, 3N... with no randomness (Chaos Monkey for Spring Boot's
    "level"). ``first=N`` limits the fault to the first N matching calls, ``for_s=T`` to the
    T seconds that follow the first matching call (not the arming, so that a fault made at
    import time still gets its window); after that calls pass untouched.
    """

    rate: float = 1.0
    every: int | None = None
    first: int | None = None
    for_s: float | None = None

    @classmethod
    def build(
        cls,
        *,
        rate: float | None,
        every: int | None,
        first: int | None,
        for_s: float | None,
        default_rate: float,
    ) -> Trigger:
        """A trigger from a fault's keyword arguments; the rate falls back to
        ``default_rate`` unless ``every`` is given. Bad values raise ValueError at once."""
        if rate is not None and every is not None:
            raise ValueError(
                f"rate={rate!r} and every={every!r}: give a rate or every Nth call, not both"
            )
        return cls(
            rate=check_rate(default_rate if rate is None else rate) if every is None else 1.0,
            every=_count("every", every),
            first=_count("first", first),
            for_s=None if for_s is None else seconds("for_s", for_s, allow_zero=False),
        )

    def fires(self, call: int, elapsed_s: float, draws: CallDraws) -> bool:
        """Whether the ``call``-th matching call (from 1), ``elapsed_s`` after the first, is
        hit. The call's first draw decides, for a rate strictly between 0 and 1."""
        if self.first is not None and call > self.first:
            return False
        if self.for_s is not None and elapsed_s > self.for_s:
            return False
        if self.every is not None:
            return call % self.every == 0
        if self.rate >= 1.0:
            return True
        if self.rate <= 0.0:
            return False
        return draws.random() < self.rate

    def describe(self) -> dict[str, float | int]:
        """The trigger's settings, for fault records and the journal."""
        shown: dict[str, float | int] = (
            {"every": self.every} if self.every is not None else {"rate": self.rate}
        )
        if self.first is not None:
            shown["first"] = self.first
        if self.for_s is not None:
            shown["for_s"] = self.for_s
        return shown


def check_rate(value: object, name: str = "rate") -> float:
    """``value`` as a rate, or ValueError naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(f"{name}={value!r}: use a number from 0 to 1")
    return float(value)


def _count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: use a whole number of calls, 1 or more")
    return value


def latency_range(value: object, name: str = "latency_ms") -> tuple[float, float] | None:
    """``latency_ms`` as ``(low, high)`` milliseconds: a fixed number or a ``(low, high)``
    pair, neither negative."""
    if value is None:
        return None
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_milliseconds(part) for part in pair) or pair[0] > pair[1]:
        raise ValueError(
            f"{name}={value!r}: use milliseconds (a number >= 0) or a (low, high) pair "
            "with low <= high"
        )
    return float(pair[0]), float(pair[1])


def _milliseconds(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value >= 0
    )
