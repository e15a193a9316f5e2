"""How many more requests a judgement needs before it could catch the regression it is told
to detect: a pass on evidence too thin to fail anything is no pass (Kayenta reports
insufficient data instead).

Each requirement is the usual approximation of the test's power, over windows: Noether's
for the Mann-Whitney test (the shift's probability of ranking a request higher, from the
baseline's own latencies) and the normal approximation for two rates. "More requests" are
added to the latest window at its own split, since that is where a release gathers them.
See docs/canary-judge.md.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from itertools import repeat

#: Beyond this many more requests a requirement counts as out of reach.
OUT_OF_REACH = 10**9

Sizes = Sequence[tuple[float, float]]


def more_for_samples(sizes: Sizes, split: float, minimum: int) -> int:
    """More requests until both sides hold ``minimum`` in the windows compared."""

    def enough(grown: Sizes) -> bool:
        matched = [(c, b) for c, b in grown if c > 0 and b > 0]
        return min(sum(c for c, _ in matched), sum(b for _, b in matched)) >= minimum

    more = _smallest(lambda m: enough(_grow(sizes, split, m)))
    assert more is not None  # both sides grow without bound
    return more


def shift_probability(baseline: list[float], shift: float) -> float:
    """P(B + shift > B') for two independent draws B, B' of the sorted ``baseline`` (ties
    count half): how often a request slowed by ``shift`` outranks an unchanged one."""
    n = len(baseline)
    raised = [value + shift for value in baseline]
    below = sum(map(bisect_left, repeat(baseline, n), raised))
    below_or_tied = sum(map(bisect_right, repeat(baseline, n), raised))
    return (below + below_or_tied) / 2.0 / (n * n)


def more_for_shift(sizes: Sizes, split: float, probability: float, z: float) -> int | None:
    """More requests until the summed Mann-Whitney U is expected to reach ``z`` standard
    deviations (``z`` = the test's critical value + the power's) for a shift that outranks
    with ``probability``; None when no number of requests would do."""
    if probability <= 0.5:
        return None

    def reached(grown: Sizes) -> bool:
        pairs = sum(c * b for c, b in grown)
        variance = sum(c * b * (c + b + 1.0) / 12.0 for c, b in grown)
        return pairs > 0 and (probability - 0.5) * pairs >= z * math.sqrt(variance)

    return _smallest(lambda m: reached(_grow(sizes, split, m)))


def more_for_rates(
    sizes: Sizes, split: float, baseline: float, canary: float, z_alpha: float, z_power: float
) -> int | None:
    """More requests until a canary error rate of ``canary`` against the baseline's
    ``baseline`` would be found with the power ``z_power`` stands for, at the level
    ``z_alpha`` stands for (normal approximation of the Mantel-Haenszel statistic); None
    when the two rates are the same."""
    effect = abs(canary - baseline)
    if effect <= 0:
        return None
    q0, q1 = baseline * (1 - baseline), canary * (1 - canary)

    def reached(grown: Sizes) -> bool:
        informed = [(c * b / (c + b), c / (c + b)) for c, b in grown if c > 0 and b > 0]
        weight = sum(h for h, _ in informed)
        null = sum(h * _bernoulli(share * canary + (1 - share) * baseline) for h, share in informed)
        alternative = sum(h * ((1 - share) * q1 + share * q0) for h, share in informed)
        needed = z_alpha * math.sqrt(null) + z_power * math.sqrt(alternative)
        return weight > 0 and effect * weight >= needed

    return _smallest(lambda m: reached(_grow(sizes, split, m)))


def _bernoulli(p: float) -> float:
    return p * (1.0 - p)


def _grow(sizes: Sizes, split: float, more: int) -> list[tuple[float, float]]:
    """``sizes`` with ``more`` requests added to the latest window, ``split`` to the canary."""
    grown = [(float(c), float(b)) for c, b in sizes] or [(0.0, 0.0)]
    c, b = grown[-1]
    grown[-1] = (c + split * more, b + (1.0 - split) * more)
    return grown


def _smallest(reached: Callable[[int], bool]) -> int | None:
    """The smallest number of more requests for which ``reached`` holds (it holds for every
    larger one), or None if it does not within ``OUT_OF_REACH``."""
    if reached(0):
        return 0
    low, high = 0, 1
    while not reached(high):
        low, high = high, high * 2
        if high > OUT_OF_REACH:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle
    return high
