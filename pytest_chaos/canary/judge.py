"""Judges of a canary against its baseline: is the new version worse than the old one?

A judge takes the requests each pool served (:class:`Observation`: a latency and whether it
succeeded) and returns a :class:`Verdict` — ``pass``, ``marginal``, ``fail`` or
``inconclusive`` — with one :class:`MetricResult` per metric, each carrying its numbers.

:class:`ThresholdJudge` applies the seed material's fixed rules (at least 100 canary
requests, an error-rate ceiling, an error ratio and a p50 latency ratio to production).
:class:`StatisticalJudge` asks what Kayenta asks: is the difference real (a Mann-Whitney U
test on latency, Fisher's exact test on errors) *and* large enough to matter (an effect-size
floor)? Below a minimum sample size it says ``inconclusive``, never ``fail``: a canary that
has seen three requests has not failed (flagger#1035, argo-rollouts#1905).

Everything here is pure Python (``math``, ``bisect``) and deterministic: the same samples
give the same verdict. See docs/canary-judge.md.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import repeat
from statistics import NormalDist
from typing import Any, Protocol, runtime_checkable

__all__ = [
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

OUTCOMES = ("pass", "marginal", "fail", "inconclusive")
ALTERNATIVES = ("greater", "less", "two-sided")
DIRECTIONS = {"increase": "greater", "decrease": "less", "either": "two-sided"}
METRICS = ("error_rate", "latency")
EFFECT_FLOORS = {"latency": 1.1, "latency_ms": 1.0, "error_rate": 0.002}

# Above this many canary x baseline pairs the Hodges-Lehmann shift and its interval are taken
# from evenly spaced order statistics of each sample (about 100 x 100 pairs): ~1.5 ms, however
# large the samples, and within a small fraction of the spread of the exact value.
HL_PAIRS = 10_000


# -- what a judge reads and writes --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One request served by a pool: its latency, whether it succeeded, and when it ended
    (monotonic seconds; optional, judges here do not need it)."""

    latency_ms: float
    ok: bool
    at: float = 0.0


@dataclass(frozen=True)
class MetricResult:
    """One metric's comparison: the compared values (rates, medians), the outcome, a line of
    text with the numbers, and the statistics when a test was run.

    ``effect`` is the metric's effect size: for latency the ratio canary/baseline implied by
    the Hodges-Lehmann shift (1.0 = no change), for the error rate the difference of the
    rates (canary - baseline), for the threshold judge's ratios the ratio itself.
    ``ci_low``/``ci_high`` bound ``effect``. ``critical`` marks a metric whose failure
    fails the whole canary at once.
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

    def to_json(self) -> dict[str, Any]:
        """A plain dict (non-finite numbers as None), for journals and reports."""
        return {key: _finite(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Verdict:
    """A judge's answer for the canary as a whole, with every metric's result and the
    sample sizes it saw; ``reason`` is the deciding metric's detail."""

    outcome: str
    metrics: tuple[MetricResult, ...]
    canary_count: int
    baseline_count: int
    reason: str

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
            "metrics": [m.to_json() for m in self.metrics],
        }


@runtime_checkable
class Judge(Protocol):
    """Anything that compares a canary's requests with the baseline's."""

    def judge(self, canary: Sequence[Observation], baseline: Sequence[Observation]) -> Verdict:
        """The verdict on ``canary`` against ``baseline``."""
        ...


# -- the seed material's rules ------------------------------------------------------------


class ThresholdJudge:
    """The seed material's ``evaluate_canary``, rule for rule: fewer than ``min_requests``
    canary requests is "not enough data yet" (here ``inconclusive``; the seed called it
    healthy and moved on, which a rollout still may); then, in this order, the canary fails
    when its error rate is above ``error_rate_max``, when it is more than
    ``error_ratio_max`` times the baseline's (the baseline's floored at 0.1%; skipped
    without baseline requests), or when its median latency is more than
    ``latency_p50_ratio_max`` times the baseline's (skipped when that is 0). Every rule is
    evaluated and reported; the first that fails gives the reason, in the seed's words.
    """

    def __init__(
        self,
        *,
        min_requests: int = 100,
        error_rate_max: float = 0.01,
        error_ratio_max: float = 2.0,
        latency_p50_ratio_max: float = 1.5,
    ) -> None:
        _check_int("min_requests", min_requests, 1)
        _check_range("error_rate_max", error_rate_max, 0.0, 1.0)
        _check_range("error_ratio_max", error_ratio_max, 0.0, math.inf)
        _check_range("latency_p50_ratio_max", latency_p50_ratio_max, 0.0, math.inf)
        self.min_requests = min_requests
        self.error_rate_max = error_rate_max
        self.error_ratio_max = error_ratio_max
        self.latency_p50_ratio_max = latency_p50_ratio_max

    def __repr__(self) -> str:
        return (
            f"ThresholdJudge(min_requests={self.min_requests}, "
            f"error_rate_max={self.error_rate_max}, error_ratio_max={self.error_ratio_max}, "
            f"latency_p50_ratio_max={self.latency_p50_ratio_max})"
        )

    def judge(self, canary: Sequence[Observation], baseline: Sequence[Observation]) -> Verdict:
        """The seed's decision on ``canary`` against ``baseline`` (production)."""
        nc, nb = len(canary), len(baseline)
        c_rate = _errors(canary) / nc if nc else 0.0
        b_rate = _errors(baseline) / nb if nb else 0.0
        c_p50 = _median_sorted(sorted(o.latency_ms for o in canary)) if nc else 0.0
        b_p50 = _median_sorted(sorted(o.latency_ms for o in baseline)) if nb else 0.0

        if nc < self.min_requests:
            why = f"Not enough data yet: {nc} canary requests < {self.min_requests}"
            results = (
                MetricResult("error_rate", "inconclusive", c_rate, b_rate, why),
                MetricResult("error_ratio", "inconclusive", c_rate, b_rate, why),
                MetricResult("latency_p50", "inconclusive", c_p50, b_p50, why),
            )
            return Verdict("inconclusive", results, nc, nb, why)

        rate_max = self.error_rate_max
        if c_rate > rate_max:
            rate = MetricResult(
                "error_rate",
                "fail",
                c_rate,
                b_rate,
                f"Error rate too high: {c_rate:.2%} > {rate_max:.2%}",
                effect=c_rate,
            )
        else:
            detail = f"error rate {c_rate:.2%} <= {rate_max:.2%}"
            rate = MetricResult("error_rate", "pass", c_rate, b_rate, detail, effect=c_rate)

        if nb == 0:
            ratio = MetricResult(
                "error_ratio", "inconclusive", c_rate, None, "no production requests to compare"
            )
        else:
            error_ratio = c_rate / max(b_rate, 0.001)
            ratio_max = self.error_ratio_max
            if error_ratio > ratio_max:
                outcome = "fail"
                detail = (
                    f"Error rate {error_ratio:.1f}x higher than production: {c_rate:.2%} vs "
                    f"{b_rate:.2%}, {error_ratio:.2f}x > {ratio_max:g}x"
                )
            else:
                outcome = "pass"
                detail = (
                    f"error rate {c_rate:.2%} vs {b_rate:.2%}: {error_ratio:.2f}x <= {ratio_max:g}x"
                )
            ratio = MetricResult("error_ratio", outcome, c_rate, b_rate, detail, effect=error_ratio)

        if b_p50 <= 0:
            why = "no production latency to compare"
            latency = MetricResult("latency_p50", "inconclusive", c_p50, b_p50 if nb else None, why)
        else:
            p50_ratio = c_p50 / b_p50
            p50_max = self.latency_p50_ratio_max
            numbers = f"p50 {c_p50:.1f} ms vs {b_p50:.1f} ms"
            if p50_ratio > p50_max:
                outcome = "fail"
                detail = (
                    f"Latency {p50_ratio:.1f}x higher than production: "
                    f"{numbers}: {p50_ratio:.2f}x > {p50_max:g}x"
                )
            else:
                outcome, detail = "pass", f"{numbers}: {p50_ratio:.2f}x <= {p50_max:g}x"
            latency = MetricResult("latency_p50", outcome, c_p50, b_p50, detail, effect=p50_ratio)

        return _overall((rate, ratio, latency), nc, nb, healthy="Canary is healthy")


# -- the statistical judge ------------------------------------------------------------------


class StatisticalJudge:
    """Kayenta-like: per metric, is the canary worse, significantly *and* materially?

    - ``latency``: Mann-Whitney U (normal approximation, tie-corrected, with continuity
      correction) on the two samples of latencies; the effect is the ratio
      ``(baseline median + Hodges-Lehmann shift) / baseline median``, with the interval from
      the Hodges-Lehmann confidence bounds. ``effect_floor["latency"]`` is a ratio (1.1:
      at least 10% slower) and ``effect_floor["latency_ms"]`` a shift the canary must also
      reach (1.0: at least 1 ms slower), so that two instances of a sub-millisecond service
      differing by 0.2 ms — a warmer process, a busier CPU — do not fail a release.
    - ``error_rate``: Fisher's exact test on the 2x2 table of errors and successes; the
      effect is the difference of the rates, with Newcombe's hybrid score interval.
      ``effect_floor["error_rate"]`` is absolute (0.002: at least 0.2 points worse).

    Tests are one-sided in the bad ``direction`` of each metric ("increase", "decrease" or
    "either"; "increase" is bad for both by default). Intervals are two-sided with
    ``alpha`` in each tail (99.4% for the default ``alpha=0.003``), so the lower end matches
    the one-sided test. The default ``alpha`` keeps false rollbacks of an equal canary under
    1% over a six-stage rollout judged after every stage (benchmarks/canary_judge.py).

    A metric **fails** when ``p < alpha`` and the effect reaches the floor (both floors, for
    latency). It is **marginal** when it falls short of that by no more than a factor of
    ``marginal`` on one count: ``p < alpha`` with an effect of at least floor/``marginal``
    (measured from no change: 1.05x and 0.5 ms for the default floors), or
    ``p < marginal * alpha`` with the effect at the floor. Otherwise it **passes**. With fewer than ``min_samples`` requests in either pool
    every metric is **inconclusive**: never a fail.

    The verdict: a critical metric failing fails it at once (``Verdict.critical``); any
    failure fails it; else any marginal metric makes it marginal; else it is inconclusive
    when every metric is, and a pass otherwise.
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
    ) -> None:
        metrics = tuple(metrics)
        if not metrics or len(set(metrics)) != len(metrics):
            raise ValueError(f"metrics={metrics!r}: name each metric once, from {METRICS}")
        for name in metrics:
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
        _check_range("alpha", alpha, 0.0, 0.5, low_open=True, high_open=True)
        _check_int("min_samples", min_samples, 2)
        _check_range("marginal", marginal, 1.0, math.inf)
        floors = dict(EFFECT_FLOORS)
        for name, floor in (effect_floor or {}).items():
            if name not in floors:
                known = ", ".join(floors)
                raise ValueError(f"effect_floor for unknown metric {name!r}; known: {known}")
            if name == "latency":
                _check_range("effect_floor['latency'] (a ratio)", floor, 1.0, math.inf)
            elif name == "latency_ms":
                _check_range("effect_floor['latency_ms'] (a shift)", floor, 0.0, math.inf)
            else:
                _check_range("effect_floor['error_rate'] (a difference)", floor, 0.0, 1.0)
            floors[name] = float(floor)
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
        self._z = NormalDist().inv_cdf(1.0 - alpha)  # each tail of the intervals

    def __repr__(self) -> str:
        return (
            f"StatisticalJudge(metrics={self.metrics}, alpha={self.alpha}, "
            f"effect_floor={self.effect_floor}, min_samples={self.min_samples}, "
            f"critical={self.critical}, marginal={self.marginal}, direction={self.direction})"
        )

    @property
    def confidence(self) -> float:
        """The level of the reported intervals: ``1 - 2 * alpha``."""
        return 1.0 - 2.0 * self.alpha

    def judge(self, canary: Sequence[Observation], baseline: Sequence[Observation]) -> Verdict:
        """Compare every metric of ``canary`` with ``baseline``; see the class docstring."""
        nc, nb = len(canary), len(baseline)
        results = []
        for name in self.metrics:
            critical = name in self.critical
            if nc < self.min_samples or nb < self.min_samples:
                detail = (
                    f"{name}: {nc} canary / {nb} baseline requests, need {self.min_samples} in each"
                )
                result = MetricResult(name, "inconclusive", None, None, detail, critical=critical)
            elif name == "latency":
                result = self._latency(canary, baseline, critical)
            else:
                result = self._error_rate(canary, baseline, critical)
            results.append(result)
        return _overall(tuple(results), nc, nb, healthy="")

    def _decide(self, p: float, *effects: tuple[float, float]) -> str:
        """fail / marginal / pass from the p-value and, for each effect, how far it goes in
        the bad direction (0 = no change) against how far its floor does."""
        material = all(excess > 0 and excess >= floor for excess, floor in effects)
        half = all(excess > 0 and excess >= floor / self.marginal for excess, floor in effects)
        if p < self.alpha and material:
            return "fail"
        if (p < self.alpha and half) or (p < self.alpha * self.marginal and material):
            return "marginal"
        return "pass"

    def _latency(
        self, canary: Sequence[Observation], baseline: Sequence[Observation], critical: bool
    ) -> MetricResult:
        c = sorted(o.latency_ms for o in canary)
        b = sorted(o.latency_ms for o in baseline)
        direction = self.direction["latency"]
        test = _mann_whitney_sorted(c, b, DIRECTIONS[direction])
        shift, low, high = _hodges_lehmann_sorted(c, b, self._z, test.sd)
        c_med, b_med = _median_sorted(c), _median_sorted(b)
        ratio, r_low, r_high = (_ratio(b_med, x) for x in (shift, low, high))
        if direction == "increase":
            bad, bad_ms = ratio, shift
        elif direction == "decrease":
            bad, bad_ms = (1.0 / ratio if ratio > 0 else math.inf), -shift
        else:
            bad, bad_ms = max(ratio, 1.0 / ratio if ratio > 0 else math.inf), abs(shift)
        floor, floor_ms = self.effect_floor["latency"], self.effect_floor["latency_ms"]
        outcome = self._decide(test.p_value, (bad - 1.0, floor - 1.0), (bad_ms, floor_ms))
        detail = (
            f"latency p50 {c_med:.1f} ms vs {b_med:.1f} ms: {ratio:.2f}x "
            f"(HL shift {shift:+.1f} ms, {self.confidence * 100:g}% CI {r_low:.2f}x..{r_high:.2f}x), "
            f"floor {floor:g}x and {floor_ms:g} ms"
            f"{'' if direction == 'increase' else ' ' + direction}; "
            f"Mann-Whitney {_p(test.p_value, self.alpha)}"
        )
        return MetricResult(
            "latency", outcome, c_med, b_med, detail, test.p_value, ratio, r_low, r_high, critical
        )

    def _error_rate(
        self, canary: Sequence[Observation], baseline: Sequence[Observation], critical: bool
    ) -> MetricResult:
        nc, nb = len(canary), len(baseline)
        xc, xb = _errors(canary), _errors(baseline)
        rc, rb = xc / nc, xb / nb
        diff = rc - rb
        direction = self.direction["error_rate"]
        p = fisher_exact(xc, nc, xb, nb, DIRECTIONS[direction])
        low, high = _newcombe(xc, nc, xb, nb, self._z)
        bad = diff if direction == "increase" else -diff if direction == "decrease" else abs(diff)
        floor = self.effect_floor["error_rate"]
        outcome = self._decide(p, (bad, floor))
        detail = (
            f"error rate {rc:.2%} vs {rb:.2%} ({xc}/{nc} vs {xb}/{nb}): {diff * 100:+.2f} pts "
            f"({self.confidence * 100:g}% CI {low * 100:+.2f}..{high * 100:+.2f}), "
            f"floor {floor * 100:.2f} pts{'' if direction == 'increase' else ' ' + direction}; "
            f"Fisher {_p(p, self.alpha)}"
        )
        return MetricResult("error_rate", outcome, rc, rb, detail, p, diff, low, high, critical)


def _overall(results: tuple[MetricResult, ...], nc: int, nb: int, healthy: str) -> Verdict:
    """Combine metric results: critical fail > fail > marginal > all inconclusive > pass."""
    for wanted in (
        lambda m: m.critical and m.outcome == "fail",
        lambda m: m.outcome == "fail",
        lambda m: m.outcome == "marginal",
    ):
        chosen = [m for m in results if wanted(m)]
        if chosen:
            return Verdict(chosen[0].outcome, results, nc, nb, chosen[0].detail)
    if all(m.outcome == "inconclusive" for m in results):
        return Verdict("inconclusive", results, nc, nb, results[0].detail)
    reason = healthy or " | ".join(m.detail for m in results)
    return Verdict("pass", results, nc, nb, reason)


# -- statistics ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RankTest:
    """A Mann-Whitney U test: ``u`` counts the (canary, baseline) pairs where the canary's
    value is larger (ties count half); ``z`` and ``p_value`` are for the alternative asked
    (normal approximation with tie and continuity corrections, as
    ``scipy.stats.mannwhitneyu(method="asymptotic")``); ``sd`` is U's standard deviation."""

    u: float
    z: float
    p_value: float
    sd: float


def mann_whitney(
    canary: Sequence[float], baseline: Sequence[float], alternative: str = "greater"
) -> RankTest:
    """Mann-Whitney U test of ``canary`` against ``baseline``. ``alternative`` is what the
    test looks for: ``"greater"`` (canary tends larger), ``"less"`` or ``"two-sided"``."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative={alternative!r}: use one of {', '.join(ALTERNATIVES)}")
    if not canary or not baseline:
        raise ValueError("mann_whitney needs at least one value in each sample")
    return _mann_whitney_sorted(sorted(canary), sorted(baseline), alternative)


def _mann_whitney_sorted(c: list[float], b: list[float], alternative: str) -> RankTest:
    nc, nb = len(c), len(b)
    # U = pairs with canary > baseline + half the tied pairs; bisect runs in C
    below = sum(map(bisect_left, repeat(b, nc), c))
    below_or_tied = sum(map(bisect_right, repeat(b, nc), c))
    u = (below + below_or_tied) / 2.0
    n = nc + nb
    combined = c + b
    ties = 0
    if len(set(combined)) != n:
        ties = sum(t * t * t - t for t in Counter(combined).values() if t > 1)
    variance = nc * nb / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:  # every value equal: no evidence either way
        return RankTest(u, 0.0, 1.0, 0.0)
    sd = math.sqrt(variance)
    mu = nc * nb / 2.0
    if alternative == "greater":
        z = (u - mu - 0.5) / sd
        p = _normal_sf(z)
    elif alternative == "less":
        z = (nc * nb - u - mu - 0.5) / sd
        p = _normal_sf(z)
    else:
        z = (max(u, nc * nb - u) - mu - 0.5) / sd
        p = min(1.0, 2.0 * _normal_sf(z))
    return RankTest(u, z, max(0.0, min(1.0, p)), sd)


def hodges_lehmann(
    canary: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift of ``canary`` over ``baseline`` (the median of all
    differences canary - baseline) and its two-sided ``confidence`` interval, from the
    order statistics of those differences that the Mann-Whitney test bounds (normal
    approximation). Exact up to ``HL_PAIRS`` pairs; above, computed on evenly spaced order
    statistics of each sample."""
    _check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if not canary or not baseline:
        raise ValueError("hodges_lehmann needs at least one value in each sample")
    c, b = sorted(canary), sorted(baseline)
    sd = _mann_whitney_sorted(c, b, "two-sided").sd
    return _hodges_lehmann_sorted(c, b, NormalDist().inv_cdf(0.5 + confidence / 2.0), sd)


def _hodges_lehmann_sorted(
    c: list[float], b: list[float], z: float, sd: float
) -> tuple[float, float, float]:
    nc, nb = len(c), len(b)
    pairs = nc * nb
    if pairs > HL_PAIRS:
        side = math.isqrt(HL_PAIRS)
        mc = min(nc, max(side, HL_PAIRS // nb))
        mb = min(nb, HL_PAIRS // mc)
        c, b = _thin(c, mc), _thin(b, mb)
    diffs = sorted([x - y for x in c for y in b])
    m = len(diffs)
    half = m // 2
    estimate = diffs[half] if m % 2 else (diffs[half - 1] + diffs[half]) / 2.0
    # the k-th smallest of all N differences bounds the interval (k counted from 1)
    k = math.floor(pairs / 2.0 - z * sd)
    index = 0 if k < 1 else min(half, math.ceil(k / pairs * m) - 1)
    return estimate, diffs[index], diffs[m - 1 - index]


def _thin(ordered: list[float], m: int) -> list[float]:
    """``m`` evenly spaced order statistics (at the quantiles (i + 0.5) / m)."""
    n = len(ordered)
    if m >= n:
        return ordered
    return [ordered[int((i + 0.5) * n / m)] for i in range(m)]


def fisher_exact(
    canary_errors: int,
    canary_count: int,
    baseline_errors: int,
    baseline_count: int,
    alternative: str = "greater",
) -> float:
    """Fisher's exact test on errors: the p-value that the canary's error rate is greater
    than (``"greater"``), less than (``"less"``) or different from (``"two-sided"``) the
    baseline's, as ``scipy.stats.fisher_exact`` computes it."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative={alternative!r}: use one of {', '.join(ALTERNATIVES)}")
    for name, errors, count in (
        ("canary", canary_errors, canary_count),
        ("baseline", baseline_errors, baseline_count),
    ):
        if not 0 <= errors <= count:
            raise ValueError(f"{name}: {errors} errors in {count} requests is impossible")
    total, errors = canary_count + baseline_count, canary_errors + baseline_errors
    hyper = _Hypergeometric(total, errors, canary_count)
    if alternative == "greater":
        return hyper.tail(canary_errors, upper=True)
    if alternative == "less":
        return hyper.tail(canary_errors, upper=False)
    return hyper.two_sided(canary_errors)


class _Hypergeometric:
    """Errors drawn into the canary's ``n`` requests out of ``total`` holding ``errors``."""

    def __init__(self, total: int, errors: int, n: int) -> None:
        self.total, self.errors, self.n = total, errors, n
        self.low, self.high = max(0, n - (total - errors)), min(errors, n)
        self.mode = (n + 1) * (errors + 1) // (total + 2)
        self._log_norm = _log_comb(total, n)

    def pmf(self, k: int) -> float:
        if not self.low <= k <= self.high:
            return 0.0
        log = _log_comb(self.errors, k) + _log_comb(self.total - self.errors, self.n - k)
        return math.exp(log - self._log_norm)

    def _up(self, k: int) -> float:
        """pmf(k + 1) / pmf(k)"""
        e, n, t = self.errors, self.n, self.total
        return (e - k) * (n - k) / ((k + 1) * (t - e - n + k + 1))

    def _down(self, k: int) -> float:
        """pmf(k - 1) / pmf(k)"""
        e, n, t = self.errors, self.n, self.total
        return k * (t - e - n + k) / ((e - k + 1) * (n - k + 1))

    def _sum_away(self, k: int, upper: bool, first: float | None = None) -> float:
        """Sum of pmf from ``k`` away from the mode (terms only shrink that way)."""
        term = self.pmf(k) if first is None else first
        total = 0.0
        while term > 0.0:
            total += term
            if term < total * 1e-17 or not self.low <= k + (1 if upper else -1) <= self.high:
                break
            term *= self._up(k) if upper else self._down(k)
            k += 1 if upper else -1
        return total

    def tail(self, k: int, upper: bool) -> float:
        """P(X >= k) when ``upper``, else P(X <= k)."""
        if upper:
            if k <= self.low:
                return 1.0
            if k > self.high:
                return 0.0
            if k <= self.mode:
                return max(0.0, 1.0 - self._sum_away(k - 1, upper=False))
            return min(1.0, self._sum_away(k, upper=True))
        if k >= self.high:
            return 1.0
        if k < self.low:
            return 0.0
        if k >= self.mode:
            return max(0.0, 1.0 - self._sum_away(k + 1, upper=True))
        return min(1.0, self._sum_away(k, upper=False))

    def two_sided(self, k: int) -> float:
        """Sum of the probabilities of every table no more likely than the observed one."""
        limit = self.pmf(k) * (1.0 + 1e-7)
        if k == self.mode:
            return 1.0
        upper_side = k < self.mode  # the far side to search is above the mode
        j, term = self.mode, self.pmf(self.mode)
        while self.low <= j <= self.high and term > limit:
            term *= self._up(j) if upper_side else self._down(j)
            j += 1 if upper_side else -1
        near = self.tail(k, upper=not upper_side)
        far = self._sum_away(j, upper=upper_side) if self.low <= j <= self.high else 0.0
        return min(1.0, near + far)


def newcombe_interval(
    canary_errors: int,
    canary_count: int,
    baseline_errors: int,
    baseline_count: int,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10, from two Wilson intervals) for the
    difference of the error rates, canary - baseline: good with few or no errors."""
    _check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if canary_count < 1 or baseline_count < 1:
        raise ValueError("newcombe_interval needs at least one request in each pool")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    return _newcombe(canary_errors, canary_count, baseline_errors, baseline_count, z)


def _newcombe(x1: int, n1: int, x2: int, n2: int, z: float) -> tuple[float, float]:
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = _wilson(x1, n1, z)
    l2, u2 = _wilson(x2, n2, z)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    z2 = z * z
    centre = (x + z2 / 2.0) / (n + z2)
    half = z * math.sqrt(x * (n - x) / n + z2 / 4.0) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


# -- helpers --------------------------------------------------------------------------------


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _median_sorted(values: list[float]) -> float:
    n = len(values)
    half = n // 2
    return values[half] if n % 2 else (values[half - 1] + values[half]) / 2.0


def _ratio(baseline_median: float, shift: float) -> float:
    """The ratio canary/baseline a shift of the baseline's median implies."""
    if baseline_median > 0:
        return (baseline_median + shift) / baseline_median
    return 1.0 if shift == 0 else math.copysign(math.inf, shift)


def _errors(observations: Sequence[Observation]) -> int:
    return sum(1 for o in observations if not o.ok)


def _p(p: float, alpha: float) -> str:
    shown = "p<1e-15" if p < 1e-15 else f"p={p:.2g}"
    return f"{shown} {'<' if p < alpha else '>='} {alpha:g}"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: use a whole number, {minimum} or more")


def _check_range(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = not math.isnan(number)
        ok = ok and (number > low if low_open else number >= low)
        ok = ok and (number < high if high_open else number <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name}={value!r}: use a number in {lo}{low:g}, {high:g}{hi}")
