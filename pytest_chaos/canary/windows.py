"""Requests grouped into matched windows: the judge compares a canary's requests only with
the baseline's from the same window of time, so that whatever changes over a release —
a machine getting busier, caches warming — weighs on both sides alike.

An :class:`~pytest_chaos.canary.judge.Observation` names its window (``window``, 0 by
default: one window for everything). A window with requests on one side only is not
compared; it still tells how the latest window splits its traffic, which is how a judge
says how many more requests it needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from typing import Protocol, final

from pytest_chaos.canary.stats import Latencies, Table


class Served(Protocol):
    """What a window needs of a request: its latency, whether it succeeded, its window."""

    @property
    def latency_ms(self) -> float: ...
    @property
    def ok(self) -> bool: ...
    @property
    def window(self) -> int: ...


_window = attrgetter("window")


@final
@dataclass
class Window:
    """One window's requests: each side's latencies (sorted once grouped) and errors."""

    index: int
    canary: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    canary_errors: int = 0
    baseline_errors: int = 0

    @property
    def matched(self) -> bool:
        """Both sides served requests in this window: it can be compared."""
        return bool(self.canary and self.baseline)


@final
class Windows:
    """The canary's and the baseline's requests, window by window (in window order)."""

    def __init__(self, canary: Iterable[Served], baseline: Iterable[Served]) -> None:
        found: dict[int, Window] = {}
        for side, requests in (("canary", canary), ("baseline", baseline)):
            for index, group in groupby(sorted(requests, key=_window), key=_window):
                window = found.setdefault(index, Window(index))
                served = list(group)
                latencies = sorted([request.latency_ms for request in served])
                errors = sum([not request.ok for request in served])
                if side == "canary":
                    window.canary, window.canary_errors = latencies, errors
                else:
                    window.baseline, window.baseline_errors = latencies, errors
        self.all = [found[index] for index in sorted(found)]
        self.matched = [window for window in self.all if window.matched]

    @property
    def canary_count(self) -> int:
        """The canary's requests in the windows that can be compared."""
        return sum(len(window.canary) for window in self.matched)

    @property
    def baseline_count(self) -> int:
        """The baseline's requests in the windows that can be compared."""
        return sum(len(window.baseline) for window in self.matched)

    @property
    def split(self) -> float:
        """The canary's share of the latest window's requests (smoothed, so never 0 or 1):
        how more requests in that window would divide."""
        if not self.all:
            return 0.5
        latest = self.all[-1]
        return (len(latest.canary) + 0.5) / (len(latest.canary) + len(latest.baseline) + 1.0)

    def sizes(self) -> list[tuple[int, int]]:
        """(canary, baseline) requests of every window, the latest last."""
        return [(len(window.canary), len(window.baseline)) for window in self.all]

    def latencies(self) -> list[Latencies]:
        """Each compared window's sorted latencies, (canary, baseline)."""
        return [(window.canary, window.baseline) for window in self.matched]

    def tables(self) -> list[Table]:
        """Each compared window's errors and requests, canary then baseline."""
        return [
            (window.canary_errors, len(window.canary), window.baseline_errors, len(window.baseline))
            for window in self.matched
        ]

    def pooled(self, side: str) -> list[float]:
        """One side's latencies over the compared windows, sorted."""
        if len(self.matched) == 1:
            return list(getattr(self.matched[0], side))
        values = [ms for window in self.matched for ms in getattr(window, side)]
        values.sort()
        return values

    def errors(self, side: str) -> int:
        """One side's errors over the compared windows."""
        return sum(getattr(window, f"{side}_errors") for window in self.matched)
