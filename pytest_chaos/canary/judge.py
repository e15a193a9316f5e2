"""Judges of a canary against its baseline: is the new version worse than the old one?

A judge takes the requests each pool served (:class:`Observation`: a latency, whether it
succeeded, and the window of time it belongs to) and returns a :class:`Verdict` — ``pass``,
``marginal``, ``fail`` or ``inconclusive`` — with one :class:`MetricResult` per metric,
each carrying its numbers.

:class:`ThresholdJudge` (:mod:`.threshold`) applies fixed rules (at least 100 canary
requests, an error-rate ceiling, an error ratio and a p50 latency ratio to production).
:class:`StatisticalJudge` asks what Kayenta asks: is the difference real (a Mann-Whitney U
test on latency, Fisher's exact test on errors, each within matched windows) *and* large
enough to matter (an effect-size floor)? And when it is not: could these requests have shown
the regression it is told to detect? If not, it says ``inconclusive`` and how many more
requests it needs, never ``pass`` or ``fail``: a canary that has seen three requests has
neither passed nor failed (flagger#1035, argo-rollouts#1905).

Everything here is pure Python and deterministic: the same samples give the same verdict.
This module holds the statistical judge and names the rest (:mod:`.verdict`: what judges
read and write; :mod:`.stats` and :mod:`.power`: the tests). See docs/canary-judge.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import final

from pytest_chaos.canary.power import (
    more_for_rates,
    more_for_samples,
    more_for_shift,
    shift_probability,
)
from pytest_chaos.canary.stats import (
    HL_PAIRS,
    RankTest,
    check_int,
    check_range,
    fisher_exact,
    hodges_lehmann,
    mann_whitney,
    median_sorted,
    newcombe_interval,
    rank_test,
    rate_difference,
    shift_interval,
)
from pytest_chaos.canary.stats import error_test as stratified_error_test
from pytest_chaos.canary.threshold import ThresholdJudge
from pytest_chaos.canary.verdict import (
    OUTCOMES,
    Judge,
    MetricResult,
    Observation,
    Verdict,
    overall,
    p_text,
    ratio_of,
)
from pytest_chaos.canary.windows import Windows

__all__ = [
    "HL_PAIRS",
    "OUTCOMES",
    "Judge",
    "MetricResult",
    "Observation",
    "RankTest",
    "StatisticalJudge",
    "ThresholdJudge",
    "Verdict",
    "fisher_exact",
    "hodges_lehmann",
    "mann_whitney",
    "newcombe_interval",
]

DIRECTIONS = {"increase": "greater", "decrease": "less", "either": "two-sided"}
METRICS = ("error_rate", "latency")
EFFECT_FLOORS = {"latency": 1.1, "latency_ms": 1.0, "error_rate": 0.002}
DETECT = {"latency": 1.5, "error_rate": 0.05}


# -- the statistical judge ------------------------------------------------------------------


@final
class StatisticalJudge:
    """Kayenta-like: per metric, is the canary worse, significantly *and* materially — and
    if not, could these requests have shown it?

    Requests are compared within their windows (:class:`Observation`'s ``window``): each
    canary request only with the baseline's requests of the same window, the evidence of
    all windows summed. Windows with requests on one side only are not compared.

    - ``latency``: the Mann-Whitney U test (normal approximation, tie-corrected, with
      continuity correction; over windows, the windows' U summed); the effect is the ratio
      ``(baseline median + Hodges-Lehmann shift) / baseline median``, the shift taken over
      differences within windows, with the interval from the Hodges-Lehmann confidence
      bounds. ``effect_floor["latency"]`` is a ratio (1.1: at least 10% slower) and
      ``effect_floor["latency_ms"]`` a shift the canary must also reach (1.0: at least 1 ms
      slower), so that two instances of a sub-millisecond service differing by 0.2 ms — a
      warmer process, a busier CPU — do not fail a release.
    - ``error_rate``: Fisher's exact test on the 2x2 table of errors and successes (over
      windows, its exact stratified form); the effect is the difference of the rates
      (Mantel-Haenszel over windows), with Newcombe's hybrid score interval.
      ``effect_floor["error_rate"]`` is absolute (0.002: at least 0.2 points worse).

    Tests are one-sided in the bad ``direction`` of each metric ("increase", "decrease" or
    "either"; "increase" is bad for both by default). Intervals are two-sided with
    ``alpha`` in each tail (99.4% for the default ``alpha=0.003``), so the lower end matches
    the one-sided test.

    A metric **fails** when ``p < alpha`` and the effect reaches the floor; for latency,
    the near end of its interval must reach both floors too: the canary is shown to be
    that much slower, not only estimated to be (Kayenta classifies a metric High only when
    the interval clears its bound). Busy machines make two instances of one build differ
    by 10-25% for seconds at a time, and an estimate alone past 1.1x took that for a
    regression. Otherwise it is **inconclusive** when its requests could not have shown the
    regression ``detect`` names with probability ``power``, nor does its interval rule it
    out (``detect["latency"]``: a ratio above the ratio floor, 1.5 = 50% slower, or as far
    beyond the 1 ms floor where that is the larger; ``detect["error_rate"]``: points, 0.05 =
    five more errors in a hundred requests; None: no such requirement), with ``needed``
    saying how many more requests would do. Otherwise it is **marginal** when it falls short of a
    fail by no more than a factor of ``marginal`` on one count: ``p < alpha`` with an effect
    of at least floor/``marginal`` (measured from no change: 1.05x and 0.5 ms for the default
    floors), or ``p < marginal * alpha`` with the effect at the floor. Otherwise it
    **passes**. With fewer than ``min_samples`` requests compared in either pool every
    metric is inconclusive: never a fail.

    The verdict: a critical metric failing fails it at once (``Verdict.critical``); any
    failure fails it; else any inconclusive metric makes it inconclusive (``needed``: the
    most any metric asks for); else any marginal metric makes it marginal; else a pass.
    """

    def __init__(
        self,
        *,
        metrics: Sequence[str] = METRICS,
        alpha: float = 0.003,
        effect_floor: Mapping[str, float] | None = None,
        min_samples: int = 50,
        critical: Sequence[str] = ("error_rate",),
        marginal: float = 2.0,
        direction: Mapping[str, str] | None = None,
        detect: Mapping[str, float | None] | None = None,
        power: float = 0.99,
    ) -> None:
        metrics = tuple(metrics)
        if not metrics or len(set(metrics)) != len(metrics):
            raise ValueError(f"metrics={metrics!r}: name each metric once, from {METRICS}")
        for name in metrics:
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
        check_range("alpha", alpha, 0.0, 0.5, low_open=True, high_open=True)
        check_int("min_samples", min_samples, 2)
        check_range("marginal", marginal, 1.0, math.inf)
        check_range("power", power, 0.5, 1.0, high_open=True)
        floors = dict(EFFECT_FLOORS)
        for name, floor in (effect_floor or {}).items():
            if name not in floors:
                known = ", ".join(floors)
                raise ValueError(f"effect_floor for unknown metric {name!r}; known: {known}")
            if name == "latency":
                check_range("effect_floor['latency'] (a ratio)", floor, 1.0, math.inf)
            elif name == "latency_ms":
                check_range("effect_floor['latency_ms'] (a shift)", floor, 0.0, math.inf)
            else:
                check_range("effect_floor['error_rate'] (a difference)", floor, 0.0, 1.0)
            floors[name] = float(floor)
        detected: dict[str, float | None] = dict(DETECT)
        for name, effect in (detect or {}).items():
            if name not in METRICS:
                raise ValueError(f"detect for unknown metric {name!r}; known: {METRICS}")
            if effect is None:
                detected[name] = None
                continue
            if name == "latency":
                check_range("detect['latency'] (a ratio)", effect, 1.0, math.inf, low_open=True)
            else:
                check_range("detect['error_rate'] (a difference)", effect, 0.0, 1.0, low_open=True)
            detected[name] = float(effect)
        if detected["latency"] is not None and detected["latency"] <= floors["latency"]:
            raise ValueError(
                f"detect['latency']={detected['latency']!r}: use a ratio above "
                f"effect_floor['latency']={floors['latency']!r}, the least slowdown that fails"
            )
        directions = {"latency": "increase", "error_rate": "increase"}
        for name, value in (direction or {}).items():
            if name not in METRICS:
                raise ValueError(f"direction for unknown metric {name!r}; known: {METRICS}")
            if value not in DIRECTIONS:
                allowed = ", ".join(DIRECTIONS)
                raise ValueError(f"direction[{name!r}]={value!r}: use one of {allowed}")
            directions[name] = value
        critical = tuple(critical)
        for name in critical:
            if name not in metrics:
                raise ValueError(f"critical metric {name!r} is not judged; metrics: {metrics}")
        self.metrics = metrics
        self.alpha = alpha
        self.effect_floor = floors
        self.min_samples = min_samples
        self.critical = critical
        self.marginal = marginal
        self.direction = directions
        self.detect = detected
        self.power = power
        normal = NormalDist()
        self._z = normal.inv_cdf(1.0 - alpha)  # each tail of the intervals
        self._z_power = normal.inv_cdf(power)

    def __repr__(self) -> str:
        return (
            f"StatisticalJudge(metrics={self.metrics}, alpha={self.alpha}, "
            f"effect_floor={self.effect_floor}, min_samples={self.min_samples}, "
            f"critical={self.critical}, marginal={self.marginal}, direction={self.direction}, "
            f"detect={self.detect}, power={self.power})"
        )

    @property
    def confidence(self) -> float:
        """The level of the reported intervals: ``1 - 2 * alpha``."""
        return 1.0 - 2.0 * self.alpha

    def judge(self, canary: Sequence[Observation], baseline: Sequence[Observation]) -> Verdict:
        """Compare every metric of ``canary`` with ``baseline``; see the class docstring."""
        windows = Windows(canary, baseline)
        nc, nb = windows.canary_count, windows.baseline_count
        results = []
        for name in self.metrics:
            critical = name in self.critical
            if nc < self.min_samples or nb < self.min_samples:
                result = self._too_few(name, windows, critical)
            elif name == "latency":
                result = self._latency(windows, critical)
            else:
                result = self._error_rate(windows, critical)
            results.append(result)
        return overall(tuple(results), nc, nb, healthy="", every_metric=True)

    def _critical_z(self, name: str) -> float:
        """The test's critical value: one-sided, or two-sided for "either"."""
        if self.direction[name] == "either":
            return NormalDist().inv_cdf(1.0 - self.alpha / 2.0)
        return NormalDist().inv_cdf(1.0 - self.alpha)

    def _too_few(self, name: str, windows: Windows, critical: bool) -> MetricResult:
        nc, nb = windows.canary_count, windows.baseline_count
        needed: int | None = more_for_samples(windows.sizes(), windows.split, self.min_samples)
        if windows.matched:  # what the power needs, as far as the few requests tell
            more = (
                self._latency_needed(windows) if name == "latency" else self._rate_needed(windows)
            )
            needed = None if more is None or needed is None else max(needed, more)
        detail = f"{name}: {nc} canary / {nb} baseline requests, need {self.min_samples} in each"
        return MetricResult(
            name, "inconclusive", None, None, detail, critical=critical, needed=needed
        )

    def _decide(
        self,
        p: float,
        effects: Sequence[tuple[float, float]],
        surely: Sequence[tuple[float, float]] | None = None,
    ) -> str:
        """fail / marginal / pass from the p-value and, for each effect, how far it goes in
        the bad direction (0 = no change) against how far its floor does; ``surely``, the
        same for the near end of the effect's interval, which must reach the floors too for
        a fail."""
        material = all(excess > 0 and excess >= floor for excess, floor in effects)
        half = all(excess > 0 and excess >= floor / self.marginal for excess, floor in effects)
        sure = surely is None or all(excess > 0 and excess >= floor for excess, floor in surely)
        if p < self.alpha and material and sure:
            return "fail"
        if (p < self.alpha and half) or (p < self.alpha * self.marginal and material):
            return "marginal"
        return "pass"

    def _latency(self, windows: Windows, critical: bool) -> MetricResult:
        c, b = windows.pooled("canary"), windows.pooled("baseline")
        direction = self.direction["latency"]
        test = rank_test(windows.latencies(), DIRECTIONS[direction])
        shift, low, high = shift_interval(windows.latencies(), self._z, test.sd)
        c_med, b_med = median_sorted(c), median_sorted(b)
        ratio, r_low, r_high = (ratio_of(b_med, x) for x in (shift, low, high))
        slower = (ratio - 1.0, shift), (r_low - 1.0, low)  # estimate, near end of the interval
        faster = (_inverse(ratio) - 1.0, -shift), (_inverse(r_high) - 1.0, -high)
        if direction == "increase" or (direction == "either" and shift >= 0):
            (bad, bad_ms), (sure, sure_ms) = slower
        else:
            (bad, bad_ms), (sure, sure_ms) = faster
        floor, floor_ms = self.effect_floor["latency"], self.effect_floor["latency_ms"]
        outcome = self._decide(
            test.p_value,
            ((bad, floor - 1.0), (bad_ms, floor_ms)),
            ((sure, floor - 1.0), (sure_ms, floor_ms)),
        )
        within = "" if len(windows.matched) == 1 else ", within windows"
        detail = (
            f"latency p50 {c_med:.1f} ms vs {b_med:.1f} ms{within}: {ratio:.2f}x "
            f"(HL shift {shift:+.1f} ms, {self.confidence * 100:g}% CI {r_low:.2f}x..{r_high:.2f}x), "
            f"floor {floor:g}x and {floor_ms:g} ms"
            f"{'' if direction == 'increase' else ' ' + direction}; "
            f"Mann-Whitney {p_text(test.p_value, self.alpha)}"
        )
        needed = None
        target = self._latency_target(b_med)
        if outcome != "fail" and not self._rules_out("latency", low, high, target):
            needed = self._latency_needed(windows)
            if needed != 0:
                outcome = "inconclusive"
                wanted = f"{ratio_of(b_med, target or 0.0):.2f}x (+{target or 0.0:.1f} ms)"
                detail += f"; {self._short_of(wanted, needed)}"
        return MetricResult(
            "latency",
            outcome,
            c_med,
            b_med,
            detail,
            test.p_value,
            ratio,
            r_low,
            r_high,
            critical,
            needed,
        )

    def _latency_floor(self, baseline_median: float) -> float:
        """The least slowdown (ms) that can fail: both floors."""
        floor, floor_ms = self.effect_floor["latency"], self.effect_floor["latency_ms"]
        return max(baseline_median * (floor - 1.0), floor_ms)

    def _latency_target(self, baseline_median: float) -> float | None:
        """The slowdown (ms) a conclusive judgement must be able to show: as far beyond the
        floors as ``detect``'s ratio goes beyond the ratio floor (``detect``'s ratio itself,
        unless the floor in ms is the larger); None when nothing is asked."""
        detect = self.detect["latency"]
        if detect is None:
            return None
        beyond = baseline_median * (detect - self.effect_floor["latency"])
        return self._latency_floor(baseline_median) + beyond

    def _latency_needed(self, windows: Windows) -> int | None:
        """More requests until a slowdown of the target would fail with ``power``: until
        it would be shown to clear the floors, so it is tested as far as it goes beyond
        them."""
        baseline = windows.pooled("baseline")
        median = median_sorted(baseline)
        target = self._latency_target(median)
        if target is None:
            return 0
        probability = shift_probability(baseline, target - self._latency_floor(median))
        z = self._critical_z("latency") + self._z_power
        return more_for_shift(windows.sizes(), windows.split, probability, z)

    def _error_rate(self, windows: Windows, critical: bool) -> MetricResult:
        nc, nb = windows.canary_count, windows.baseline_count
        xc, xb = windows.errors("canary"), windows.errors("baseline")
        rc, rb = xc / nc, xb / nb
        tables = windows.tables()
        direction = self.direction["error_rate"]
        p = stratified_error_test(tables, DIRECTIONS[direction])
        diff, low, high, _ = rate_difference(tables, self._z)
        bad = diff if direction == "increase" else -diff if direction == "decrease" else abs(diff)
        floor = self.effect_floor["error_rate"]
        outcome = self._decide(p, ((bad, floor),))
        within = "" if len(tables) == 1 else ", within windows"
        detail = (
            f"error rate {rc:.2%} vs {rb:.2%} ({xc}/{nc} vs {xb}/{nb}){within}: "
            f"{diff * 100:+.2f} pts ({self.confidence * 100:g}% CI {low * 100:+.2f}..{high * 100:+.2f}), "
            f"floor {floor * 100:.2f} pts{'' if direction == 'increase' else ' ' + direction}; "
            f"Fisher {p_text(p, self.alpha)}"
        )
        needed = None
        detect = self.detect["error_rate"]
        target = None if detect is None else max(detect, floor)
        if outcome != "fail" and not self._rules_out("error_rate", low, high, target):
            needed = self._rate_needed(windows)
            if needed != 0:
                outcome = "inconclusive"
                detail += f"; {self._short_of(f'{(target or 0.0) * 100:+.2f} pts', needed)}"
        return MetricResult(
            "error_rate", outcome, rc, rb, detail, p, diff, low, high, critical, needed
        )

    def _rate_needed(self, windows: Windows) -> int | None:
        """More requests until an error rate ``detect`` points worse than the baseline's
        (and at least the floor) would be found with ``power``; 0 when nothing is asked, or
        when the baseline's rate leaves no room for such a change."""
        detect = self.detect["error_rate"]
        if detect is None:
            return 0
        effect = max(detect, self.effect_floor["error_rate"])
        baseline = rate_difference(windows.tables(), self._z)[3]
        direction = self.direction["error_rate"]
        targets = []
        if direction in ("increase", "either"):
            targets.append(min(1.0, baseline + effect))
        if direction in ("decrease", "either"):
            targets.append(max(0.0, baseline - effect))
        z = self._critical_z("error_rate")
        needs = [
            more_for_rates(windows.sizes(), windows.split, baseline, target, z, self._z_power)
            if target != baseline
            else 0
            for target in targets
        ]
        return None if None in needs else max(n for n in needs if n is not None)

    def _rules_out(self, name: str, low: float, high: float, target: float | None) -> bool:
        """Whether the interval (of the shift in ms, or of the difference of the rates)
        already excludes a change of ``target`` in the bad direction: then the requests
        speak, however few; with no target, nothing needs ruling out."""
        if target is None:
            return True
        direction = self.direction[name]
        above, below = high < target, -low < target
        if direction == "increase":
            return above
        return below if direction == "decrease" else above and below

    def _short_of(self, wanted: str, needed: int | None) -> str:
        """Why an otherwise passing metric is inconclusive."""
        if needed is None:
            return f"{wanted} not ruled out, and no number of requests here could show it"
        return (
            f"{wanted} neither ruled out nor detectable with {self.power:.0%} power: "
            f"needs {needed} more requests"
        )


def _inverse(ratio: float) -> float:
    return 1.0 / ratio if ratio > 0 else math.inf
