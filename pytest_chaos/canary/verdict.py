"""What a canary judge reads and writes: the requests each pool served (:class:`Observation`),
a result per metric (:class:`MetricResult`) and the :class:`Verdict`, and what a judge is
(:class:`Judge`); both judges combine their metrics' results here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, final, runtime_checkable

OUTCOMES = ("pass", "marginal", "fail", "inconclusive")


# -- what a judge reads and writes --------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class Observation:
    """One request served by a pool: its latency, whether it succeeded, when it started
    (monotonic seconds; informative), and the window of time it belongs to. The
    statistical judge compares the canary with the baseline window by window; everything
    in window 0 (the default) is one window."""

    latency_ms: float
    ok: bool
    at: float = 0.0
    window: int = 0


@final
@dataclass(frozen=True)
class MetricResult:
    """One metric's comparison: the compared values (rates, medians), the outcome, a line of
    text with the numbers, and the statistics when a test was run.

    ``effect`` is the metric's effect size: for latency the ratio canary/baseline implied by
    the Hodges-Lehmann shift (1.0 = no change), for the error rate the difference of the
    rates (canary - baseline, within windows), for the threshold judge's ratios the ratio
    itself. ``ci_low``/``ci_high`` bound ``effect``. ``critical`` marks a metric whose
    failure fails the whole canary at once. ``needed``, on an inconclusive result, is how
    many more requests (both pools, split as in the latest window) would make it conclusive;
    None when no number would, or the judge does not say.
    """

    metric: str
    outcome: str
    canary: float | None
    baseline: float | None
    detail: str
    p_value: float | None = None
    effect: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    critical: bool = False
    needed: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A plain dict (non-finite numbers as None), for journals and reports."""
        return {key: finite(value) for key, value in asdict(self).items()}


@final
@dataclass(frozen=True)
class Verdict:
    """A judge's answer for the canary as a whole, with every metric's result and the
    sample sizes it compared; ``reason`` is the deciding metric's detail. ``needed``, on an
    inconclusive verdict, is how many more requests the judge asks for (None: it cannot
    say)."""

    outcome: str
    metrics: tuple[MetricResult, ...]
    canary_count: int
    baseline_count: int
    reason: str
    needed: int | None = None

    @property
    def critical(self) -> bool:
        """True when a critical metric failed: roll back now, whatever the failure limits."""
        return any(m.critical and m.outcome == "fail" for m in self.metrics)

    def metric(self, name: str) -> MetricResult:
        """The result of the metric called ``name``."""
        for result in self.metrics:
            if result.metric == name:
                return result
        names = ", ".join(m.metric for m in self.metrics)
        raise KeyError(f"no metric {name!r} in this verdict; it has: {names}")

    def to_json(self) -> dict[str, Any]:
        """A plain dict, for journals and reports."""
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "critical": self.critical,
            "canary_count": self.canary_count,
            "baseline_count": self.baseline_count,
            "needed": self.needed,
            "metrics": [m.to_json() for m in self.metrics],
        }


@runtime_checkable
class Judge(Protocol):
    """Anything that compares a canary's requests with the baseline's."""

    def judge(self, canary: Sequence[Observation], baseline: Sequence[Observation]) -> Verdict:
        """The verdict on ``canary`` against ``baseline``."""
        ...


def overall(
    results: tuple[MetricResult, ...],
    nc: int,
    nb: int,
    healthy: str,
    *,
    every_metric: bool = False,
) -> Verdict:
    """Combine metric results: a critical failure, then any failure, decides; then
    inconclusive metrics make the verdict inconclusive — any one of them when
    ``every_metric`` (a pass needs every metric conclusive, and the reason says how many
    more requests the neediest asks for), else only all of them; then a marginal metric
    makes it marginal; else it passes, with ``healthy`` or every metric's detail."""
    failed = [m for m in results if m.outcome == "fail"]
    if failed:
        first = next((m for m in failed if m.critical), failed[0])
        return Verdict("fail", results, nc, nb, first.detail)
    unsure = [m for m in results if m.outcome == "inconclusive"]
    if unsure and (every_metric or len(unsure) == len(results)):
        if not every_metric:
            return Verdict("inconclusive", results, nc, nb, unsure[0].detail)
        needs = [m.needed for m in unsure]
        needed = None if None in needs else max(n for n in needs if n is not None)
        neediest = max(unsure, key=lambda m: math.inf if m.needed is None else m.needed)
        head = "inconclusive" if needed is None else f"inconclusive: needs {needed} more requests"
        return Verdict("inconclusive", results, nc, nb, f"{head}; {neediest.detail}", needed)
    marginal = [m for m in results if m.outcome == "marginal"]
    if marginal:
        return Verdict("marginal", results, nc, nb, marginal[0].detail)
    reason = healthy or " | ".join(m.detail for m in results)
    return Verdict("pass", results, nc, nb, reason)


def error_count(observations: Sequence[Observation]) -> int:
    return sum(1 for o in observations if not o.ok)


def p_text(p: float, alpha: float) -> str:
    shown = "p<1e-15" if p < 1e-15 else f"p={p:.2g}"
    return f"{shown} {'<' if p < alpha else '>='} {alpha:g}"


def ratio_of(baseline_median: float, shift: float) -> float:
    """The ratio canary/baseline a shift of the baseline's median implies."""
    if baseline_median > 0:
        return (baseline_median + shift) / baseline_median
    return 1.0 if shift == 0 else math.copysign(math.inf, shift)


def finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
