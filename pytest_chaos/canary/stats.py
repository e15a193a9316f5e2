"""The statistics the canary judge runs, each over one sample per side or over several
matched windows (stratified: the canary compared only with the baseline of its own window).

- :func:`mann_whitney` and :func:`rank_test`: the Mann-Whitney U test (normal
  approximation, tie-corrected, with continuity correction), and its stratified form: the
  windows' U statistics summed, their variances summed.
- :func:`hodges_lehmann` and :func:`shift_interval`: the Hodges-Lehmann shift (the median
  of the canary - baseline differences, within windows) and the interval that inverts the
  test above.
- :func:`fisher_exact` and :func:`error_test`: Fisher's exact test on errors, and its
  stratified form: the exact conditional test of the canary's errors given every window's
  margins (the convolution of the windows' hypergeometric distributions).
- :func:`newcombe_interval` and :func:`rate_difference`: Newcombe's hybrid score interval
  for a difference of rates, and the Mantel-Haenszel weighted difference over windows with
  Newcombe's interval on Kish's effective sizes.

With a single window each stratified function gives what its one-sample form gives. Pure
Python (``math``, ``bisect``) and deterministic. See docs/canary-judge.md.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from statistics import NormalDist
from typing import final

__all__ = [
    "HL_PAIRS",
    "RankTest",
    "error_test",
    "fisher_exact",
    "hodges_lehmann",
    "mann_whitney",
    "newcombe_interval",
    "rank_test",
    "rate_difference",
    "shift_interval",
]

ALTERNATIVES = ("greater", "less", "two-sided")

# Above this many canary x baseline pairs the Hodges-Lehmann shift and its interval are taken
# from evenly spaced order statistics of each sample (about 100 x 100 pairs): ~1.5 ms, however
# large the samples, and within a small fraction of the spread of the exact value.
HL_PAIRS = 10_000

# Probabilities below this share of the largest are left out of the stratified error test's
# distribution: far below what a float adds to a sum of the rest.
NEGLIGIBLE = 1e-18

#: One window's latencies, each side sorted: (canary, baseline).
Latencies = tuple[list[float], list[float]]
#: One window's errors: (canary errors, canary requests, baseline errors, baseline requests).
Table = tuple[int, int, int, int]


# -- latency: ranks -------------------------------------------------------------------------


@final
@dataclass(frozen=True)
class RankTest:
    """A Mann-Whitney U test: ``u`` counts the (canary, baseline) pairs where the canary's
    value is larger (ties count half); ``z`` and ``p_value`` are for the alternative asked
    (normal approximation with tie and continuity corrections, as
    ``scipy.stats.mannwhitneyu(method="asymptotic")``); ``sd`` is U's standard deviation.
    Over several windows, ``u`` and its variance are the sums of the windows'."""

    u: float
    z: float
    p_value: float
    sd: float


def mann_whitney(
    canary: Sequence[float], baseline: Sequence[float], alternative: str = "greater"
) -> RankTest:
    """Mann-Whitney U test of ``canary`` against ``baseline``. ``alternative`` is what the
    test looks for: ``"greater"`` (canary tends larger), ``"less"`` or ``"two-sided"``."""
    _check_alternative(alternative)
    if not canary or not baseline:
        raise ValueError("mann_whitney needs at least one value in each sample")
    return rank_test([(sorted(canary), sorted(baseline))], alternative)


def rank_test(windows: Sequence[Latencies], alternative: str) -> RankTest:
    """The stratified Mann-Whitney test over ``windows`` (each side sorted): the sum of the
    windows' U against the sum of their means and variances. Windows with an empty side
    add nothing."""
    u = variance = 0.0
    pairs = 0
    for c, b in windows:
        if c and b:
            window_u, window_variance = _rank_sums(c, b)
            u += window_u
            variance += window_variance
            pairs += len(c) * len(b)
    if variance <= 0:  # every value equal, or nothing to compare: no evidence either way
        return RankTest(u, 0.0, 1.0, 0.0)
    sd = math.sqrt(variance)
    mu = pairs / 2.0
    if alternative == "greater":
        z = (u - mu - 0.5) / sd
        p = _normal_sf(z)
    elif alternative == "less":
        z = (pairs - u - mu - 0.5) / sd
        p = _normal_sf(z)
    else:
        z = (max(u, pairs - u) - mu - 0.5) / sd
        p = min(1.0, 2.0 * _normal_sf(z))
    return RankTest(u, z, max(0.0, min(1.0, p)), sd)


def _rank_sums(c: list[float], b: list[float]) -> tuple[float, float]:
    """One window's U (bisect on the sorted baseline runs in C) and its tie-corrected
    variance under no difference."""
    nc, nb = len(c), len(b)
    below = sum(map(bisect_left, repeat(b, nc), c))
    below_or_tied = sum(map(bisect_right, repeat(b, nc), c))
    n = nc + nb
    combined = c + b
    ties = 0
    if len(set(combined)) != n:
        ties = sum(t * t * t - t for t in Counter(combined).values() if t > 1)
    variance = nc * nb / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    return (below + below_or_tied) / 2.0, variance


def hodges_lehmann(
    canary: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift of ``canary`` over ``baseline`` (the median of all
    differences canary - baseline) and its two-sided ``confidence`` interval, from the
    order statistics of those differences that the Mann-Whitney test bounds (normal
    approximation). Exact up to ``HL_PAIRS`` pairs; above, computed on evenly spaced order
    statistics of each sample."""
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if not canary or not baseline:
        raise ValueError("hodges_lehmann needs at least one value in each sample")
    windows = [(sorted(canary), sorted(baseline))]
    sd = rank_test(windows, "two-sided").sd
    return shift_interval(windows, NormalDist().inv_cdf(0.5 + confidence / 2.0), sd)


def shift_interval(windows: Sequence[Latencies], z: float, sd: float) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift over ``windows``: the median of the differences canary -
    baseline taken within each window, and the interval between the k-th smallest and
    largest of them, k = floor(pairs / 2 - z * sd) (``sd`` that of the summed U). Above
    ``HL_PAIRS`` pairs in all, each window is thinned to its share of them."""
    pairs = sum(len(c) * len(b) for c, b in windows)
    diffs: list[float] = []
    for c, b in windows:
        if not (c and b):
            continue
        if pairs > HL_PAIRS:
            budget = max(1, round(HL_PAIRS * len(c) * len(b) / pairs))
            mc = min(len(c), max(math.isqrt(budget), budget // len(b), 1))
            mb = min(len(b), max(1, budget // mc))
            c, b = _thin(c, mc), _thin(b, mb)
        diffs += [x - y for x in c for y in b]
    diffs.sort()
    m = len(diffs)
    half = m // 2
    estimate = diffs[half] if m % 2 else (diffs[half - 1] + diffs[half]) / 2.0
    # the k-th smallest of all differences bounds the interval (k counted from 1)
    k = math.floor(pairs / 2.0 - z * sd)
    index = 0 if k < 1 else min(half, math.ceil(k / pairs * m) - 1)
    return estimate, diffs[index], diffs[m - 1 - index]


def _thin(ordered: list[float], m: int) -> list[float]:
    """``m`` evenly spaced order statistics (at the quantiles (i + 0.5) / m)."""
    n = len(ordered)
    if m >= n:
        return ordered
    return [ordered[int((i + 0.5) * n / m)] for i in range(m)]


# -- errors: counts ---------------------------------------------------------------------------


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
    _check_alternative(alternative)
    _check_table((canary_errors, canary_count, baseline_errors, baseline_count))
    hyper = _Hypergeometric(
        canary_count + baseline_count, canary_errors + baseline_errors, canary_count
    )
    if alternative == "greater":
        return hyper.tail(canary_errors, upper=True)
    if alternative == "less":
        return hyper.tail(canary_errors, upper=False)
    return hyper.two_sided(canary_errors)


def error_test(tables: Sequence[Table], alternative: str) -> float:
    """The exact test of the canary's errors over windows: given each window's requests and
    errors, how likely is a canary total at least as extreme as the observed one (for
    ``"two-sided"``: the total probability of totals no more likely). One window: Fisher's
    exact test. Windows with an empty side add nothing."""
    used = [table for table in tables if table[1] and table[3]]
    for table in used:
        _check_table(table)
    if not used:
        return 1.0
    if len(used) == 1:
        return fisher_exact(*used[0], alternative=alternative)
    start, dist = 0, [1.0]
    for xc, nc, xb, nb in used:
        low, pmf = _Hypergeometric(nc + nb, xc + xb, nc).bulk()
        dist = _convolve(dist, pmf)
        start += low
        cut, dist = _trim(dist)
        start += cut
    k = sum(table[0] for table in used) - start
    if alternative == "greater":
        return 1.0 if k <= 0 else min(1.0, math.fsum(dist[k:]))
    if alternative == "less":
        return 0.0 if k < 0 else min(1.0, math.fsum(dist[: k + 1]))
    observed = dist[k] if 0 <= k < len(dist) else 0.0
    limit = observed * (1.0 + 1e-7)
    return min(1.0, math.fsum(p for p in dist if p <= limit))


def _convolve(a: list[float], b: list[float]) -> list[float]:
    if len(a) < len(b):
        a, b = b, a
    out = [0.0] * (len(a) + len(b) - 1)
    width = len(a)
    for i, y in enumerate(b):  # the shorter one, so that the comprehensions are long
        out[i : i + width] = [o + x * y for o, x in zip(out[i : i + width], a, strict=True)]
    return out


def _trim(dist: list[float]) -> tuple[int, list[float]]:
    """Drop the negligible ends of a distribution: (how many were cut at the low end, the
    rest)."""
    floor = max(dist) * NEGLIGIBLE
    first = next(i for i, p in enumerate(dist) if p > floor)
    last = len(dist) - next(i for i, p in enumerate(reversed(dist)) if p > floor)
    return first, dist[first:last]


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

    def bulk(self) -> tuple[int, list[float]]:
        """The pmf from the mode outwards until terms are negligible: (first k, values)."""
        peak = self.pmf(self.mode)
        floor = peak * NEGLIGIBLE
        above, k, term = [], self.mode, peak
        while k < self.high and term > floor:
            term *= self._up(k)
            k += 1
            above.append(term)
        below, k, term = [], self.mode, peak
        while k > self.low and term > floor:
            term *= self._down(k)
            k -= 1
            below.append(term)
        return self.mode - len(below), [*reversed(below), peak, *above]

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
    check_range("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    if canary_count < 1 or baseline_count < 1:
        raise ValueError("newcombe_interval needs at least one request in each pool")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    return _newcombe(canary_errors, canary_count, baseline_errors, baseline_count, z)


def rate_difference(tables: Sequence[Table], z: float) -> tuple[float, float, float, float]:
    """The canary's error rate minus the baseline's, within windows: the Mantel-Haenszel
    weighted difference (weights ``nc * nb / (nc + nb)``), and Newcombe's interval (``z``
    in each tail) on each side's weighted rate with Kish's effective size. Returns
    (difference, low, high, baseline's weighted rate). One window: the plain difference and
    Newcombe's interval."""
    used = [table for table in tables if table[1] and table[3]]
    weights = [nc * nb / (nc + nb) for _, nc, _, nb in used]
    total = sum(weights)
    shares = [w / total for w in weights]
    canary = math.fsum(v * xc / nc for v, (xc, nc, _, _) in zip(shares, used, strict=True))
    baseline = math.fsum(v * xb / nb for v, (_, _, xb, nb) in zip(shares, used, strict=True))
    n_canary = 1.0 / math.fsum(v * v / nc for v, (_, nc, _, _) in zip(shares, used, strict=True))
    n_baseline = 1.0 / math.fsum(v * v / nb for v, (_, _, _, nb) in zip(shares, used, strict=True))
    low, high = _newcombe(canary * n_canary, n_canary, baseline * n_baseline, n_baseline, z)
    return canary - baseline, low, high, baseline


def _newcombe(x1: float, n1: float, x2: float, n2: float, z: float) -> tuple[float, float]:
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = _wilson(x1, n1, z)
    l2, u2 = _wilson(x2, n2, z)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def _wilson(x: float, n: float, z: float) -> tuple[float, float]:
    z2 = z * z
    centre = (x + z2 / 2.0) / (n + z2)
    half = z * math.sqrt(max(0.0, x * (n - x) / n) + z2 / 4.0) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


# -- helpers --------------------------------------------------------------------------------


def median_sorted(values: list[float]) -> float:
    """The median of sorted ``values``."""
    n = len(values)
    half = n // 2
    return values[half] if n % 2 else (values[half - 1] + values[half]) / 2.0


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative={alternative!r}: use one of {', '.join(ALTERNATIVES)}")


def _check_table(table: Table) -> None:
    canary_errors, canary_count, baseline_errors, baseline_count = table
    for name, errors, count in (
        ("canary", canary_errors, canary_count),
        ("baseline", baseline_errors, baseline_count),
    ):
        if not 0 <= errors <= count:
            raise ValueError(f"{name}: {errors} errors in {count} requests is impossible")


def check_int(name: str, value: object, minimum: int) -> None:
    """Refuse ``value`` unless it is a whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: use a whole number, {minimum} or more")


def check_range(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Refuse ``value`` unless it is a number in the range (open or closed at each end)."""
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
