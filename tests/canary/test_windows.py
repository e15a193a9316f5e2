"""Judging within matched windows (issue 17): the stratified statistics against their
one-window forms and a brute-force reference, drift that only time explains, and the
inconclusive verdict that says how many more requests it needs."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import pytest

from pytest_chaos.canary.judge import Observation, StatisticalJudge
from pytest_chaos.canary.power import more_for_rates, more_for_shift, shift_probability
from pytest_chaos.canary.stats import (
    error_test,
    fisher_exact,
    hodges_lehmann,
    mann_whitney,
    newcombe_interval,
    rank_test,
    rate_difference,
    shift_interval,
)

# -- one window: the stratified statistics are the plain ones ------------------------------


def test_one_window_gives_the_one_sample_statistics() -> None:
    rng = random.Random(2)
    c = sorted(rng.uniform(40, 60) for _ in range(70))
    b = sorted(rng.uniform(40, 58) for _ in range(90))
    for alternative in ("greater", "less", "two-sided"):
        assert rank_test([(c, b)], alternative) == mann_whitney(c, b, alternative)
    z = 1.959963984540054
    assert shift_interval([(c, b)], z, mann_whitney(c, b, "two-sided").sd) == hodges_lehmann(c, b)
    for table in ((3, 200, 0, 200), (30, 1000, 12, 1000), (1, 300, 9, 300)):
        for alternative in ("greater", "less", "two-sided"):
            assert error_test([table], alternative) == fisher_exact(*table, alternative)
        diff, low, high, baseline = rate_difference([table], z)
        xc, nc, xb, nb = table
        assert math.isclose(diff, xc / nc - xb / nb, abs_tol=1e-15)
        assert math.isclose(baseline, xb / nb, abs_tol=1e-15)
        expected = newcombe_interval(*table, confidence=0.95)
        assert math.isclose(low, expected[0], abs_tol=1e-12)
        assert math.isclose(high, expected[1], abs_tol=1e-12)


# -- several windows ----------------------------------------------------------------------


def brute_force_error_test(tables: Sequence[tuple[int, int, int, int]], alternative: str) -> float:
    """The conditional distribution of the canary's total errors, every window's margins
    fixed, by enumerating every combination of per-window counts."""
    supports = []
    for xc, nc, xb, nb in tables:
        errors, total = xc + xb, nc + nb
        support = {}
        for k in range(max(0, nc - (total - errors)), min(errors, nc) + 1):
            support[k] = (
                math.comb(errors, k) * math.comb(total - errors, nc - k) / math.comb(total, nc)
            )
        supports.append(support)
    distribution: dict[int, float] = {}
    for combination in itertools.product(*(s.items() for s in supports)):
        total_errors = sum(k for k, _ in combination)
        distribution[total_errors] = distribution.get(total_errors, 0.0) + math.prod(
            p for _, p in combination
        )
    observed = sum(table[0] for table in tables)
    if alternative == "greater":
        return sum(p for k, p in distribution.items() if k >= observed)
    if alternative == "less":
        return sum(p for k, p in distribution.items() if k <= observed)
    limit = distribution[observed] * (1 + 1e-7)
    return sum(p for p in distribution.values() if p <= limit)


@pytest.mark.parametrize(
    "tables",
    [
        [(2, 10, 0, 190), (3, 40, 2, 160), (6, 100, 3, 100)],
        [(0, 5, 1, 95), (1, 20, 4, 80), (0, 50, 0, 50)],
        [(9, 30, 10, 170), (12, 60, 9, 140)],
    ],
)
def test_the_stratified_error_test_is_the_exact_conditional_one(
    tables: list[tuple[int, int, int, int]],
) -> None:
    for alternative in ("greater", "less", "two-sided"):
        expected = brute_force_error_test(tables, alternative)
        assert math.isclose(error_test(tables, alternative), expected, rel_tol=1e-9), alternative


def test_windows_sum_the_rank_statistics_and_pair_only_within_a_window() -> None:
    early = ([1.0, 2.0], [1.5, 2.5, 3.0])
    late = ([11.0, 12.0, 13.0], [10.5, 12.5])
    test = rank_test([early, late], "greater")
    assert test.u == mann_whitney(*early).u + mann_whitney(*late).u
    assert test.sd == pytest.approx(math.hypot(mann_whitney(*early).sd, mann_whitney(*late).sd))
    pooled = mann_whitney(early[0] + late[0], early[1] + late[1])
    assert test.u != pooled.u  # the pooled test pairs early canaries with late baselines
    shift = shift_interval([early, late], 1.96, test.sd)[0]
    within = sorted(x - y for c, b in (early, late) for x in c for y in b)
    assert shift == (within[5] + within[6]) / 2  # the median of the 12 within-window pairs


def observations(
    windows: Sequence[tuple[int, int, float, float]], seed: int, slower: float = 0.0
) -> tuple[list[Observation], list[Observation]]:
    """Per window (canary requests, baseline requests, base latency, error rate): both
    sides drawn alike in a window, the canary ``slower`` ms more."""
    rng = random.Random(seed)
    canary: list[Observation] = []
    baseline: list[Observation] = []
    for index, (nc, nb, base, errors) in enumerate(windows):
        for count, side, extra in ((nc, canary, slower), (nb, baseline, 0.0)):
            for _ in range(count):
                latency = base + extra + rng.uniform(0.0, 4.0)
                side.append(Observation(latency, rng.random() >= errors, window=index))
    return canary, baseline


def one_window(requests: list[Observation]) -> list[Observation]:
    return [Observation(o.latency_ms, o.ok) for o in requests]


#: A release on a machine getting busier: the canary's share grows stage by stage while
#: every request gets slower (20 ms, then 24, 28, 32, 36).
DRIFT = [(2, 198, 20.0, 0.0), (10, 190, 24.0, 0.0), (20, 180, 28.0, 0.0), (50, 150, 32.0, 0.0)]
DRIFT += [(400, 400, 36.0, 0.0)]


def test_drift_over_time_fails_a_healthy_canary_only_when_judged_in_one_window() -> None:
    judge = StatisticalJudge()
    for seed in range(20):
        canary, baseline = observations(DRIFT, seed)
        pooled = judge.judge(one_window(canary), one_window(baseline))
        assert pooled.metric("latency").outcome == "fail", seed
        windowed = judge.judge(canary, baseline)
        assert windowed.outcome == "pass", (seed, windowed.reason)
        assert windowed.metric("latency").effect == pytest.approx(1.0, abs=0.03)


def test_error_drift_is_no_regression_within_windows() -> None:
    """Errors only in an early window, where the baseline had most of the requests: pooled,
    the canary looks better; with the windows swapped round, pooled, it looks worse."""
    judge = StatisticalJudge()
    plan = [(50, 950, 20.0, 0.0), (450, 450, 20.0, 0.2)]
    canary, baseline = observations(plan, 3)
    assert judge.judge(one_window(canary), one_window(baseline)).metric("error_rate").outcome == (
        "fail"
    )
    windowed = judge.judge(canary, baseline).metric("error_rate")
    assert windowed.outcome == "pass", windowed.detail
    assert "within windows" in windowed.detail


def test_a_real_regression_under_drift_is_still_caught() -> None:
    judge = StatisticalJudge()
    slower = observations(DRIFT, 5, slower=17.0)  # about +50% of the late windows' 36 ms
    verdict = judge.judge(*slower)
    assert verdict.metric("latency").outcome == "fail", verdict.reason
    worse = [(n, m, base, 0.05) for n, m, base, _ in DRIFT]
    canary, baseline = observations(worse, 6)
    failing = [
        Observation(o.latency_ms, o.ok and i % 10 != 0, 0.0, o.window) for i, o in enumerate(canary)
    ]
    verdict = judge.judge(failing, baseline)
    assert verdict.outcome == "fail" and verdict.critical, verdict.reason


def test_a_window_with_one_side_only_is_not_compared() -> None:
    canary, baseline = observations([(60, 60, 20.0, 0.0)], 1)
    lonely = [Observation(500.0, False, window=7)] * 30  # only the canary served in window 7
    verdict = StatisticalJudge().judge(canary + lonely, baseline)
    assert (verdict.canary_count, verdict.baseline_count) == (60, 60)
    assert verdict.metric("error_rate").canary == 0.0


# -- inconclusive: how many more requests ----------------------------------------------------


def test_too_few_requests_are_inconclusive_with_how_many_more() -> None:
    canary, baseline = observations([(2, 198, 20.0, 0.0), (10, 190, 20.0, 0.0)], 1)
    verdict = StatisticalJudge().judge(canary, baseline)
    assert verdict.outcome == "inconclusive"
    assert verdict.needed is not None and verdict.needed > 0
    assert verdict.reason.startswith(f"inconclusive: needs {verdict.needed} more requests; ")
    assert all(m.outcome == "inconclusive" for m in verdict.metrics)


def test_the_requests_asked_for_make_the_verdict_conclusive() -> None:
    """Grown by what it asks for, at the latest window's split, a healthy canary's
    judgement passes; short of it by much, it does not."""
    judge = StatisticalJudge()
    start = [(10, 190, 20.0, 0.05), (40, 160, 20.0, 0.05)]
    verdict = judge.judge(*observations(start, 4))
    assert verdict.outcome == "inconclusive" and verdict.needed is not None
    share = (40 + 0.5) / 201
    grown = [*start[:-1], (40 + round(share * verdict.needed), 160, 20.0, 0.05)]
    grown[-1] = (grown[-1][0], 160 + round((1 - share) * verdict.needed), 20.0, 0.05)
    conclusive = [judge.judge(*observations(grown, seed)).outcome for seed in range(10)]
    assert conclusive.count("inconclusive") <= 1, conclusive
    half = [
        *start[:-1],
        (
            40 + round(share * verdict.needed / 4),
            160 + round((1 - share) * verdict.needed / 4),
            20.0,
            0.05,
        ),
    ]
    short = [judge.judge(*observations(half, seed)).outcome for seed in range(10)]
    assert short.count("inconclusive") >= 5, short


def test_an_interval_that_rules_the_regression_out_is_conclusive_however_few() -> None:
    """A canary with no errors against a baseline failing 30%: its interval already
    excludes five points more, so no power is asked of it."""
    canary, baseline = observations([(60, 60, 20.0, 0.0)], 1)
    failing = [Observation(o.latency_ms, i % 10 > 2, window=0) for i, o in enumerate(baseline)]
    verdict = StatisticalJudge().judge(canary, failing)
    errors = verdict.metric("error_rate")
    assert errors.outcome == "pass" and errors.needed is None
    assert errors.ci_high is not None and errors.ci_high < 0.05


def test_without_a_regression_to_detect_only_min_samples_count() -> None:
    canary, baseline = observations([(60, 60, 20.0, 0.05)], 1)
    assert StatisticalJudge().judge(canary, baseline).outcome == "inconclusive"
    lenient = StatisticalJudge(detect={"error_rate": None, "latency": None})
    assert lenient.judge(canary, baseline).outcome == "pass"


def test_power_requirements() -> None:
    baseline = [20.0 + 4.0 * (i + 0.5) / 100 for i in range(100)]
    assert shift_probability(baseline, 0.0) == pytest.approx(0.5)
    assert shift_probability(baseline, 10.0) == 1.0
    assert more_for_shift([(100, 100)], 0.5, 1.0, 4.4) == 0  # certain, and plenty
    less_likely = more_for_shift([(2, 2)], 0.5, 0.6, 4.4)
    more_likely = more_for_shift([(2, 2)], 0.5, 0.9, 4.4)
    assert less_likely is not None and more_likely is not None
    assert less_likely > more_likely
    assert more_for_shift([(10, 10)], 0.5, 0.5, 4.4) is None  # no shift, nothing to detect
    more = more_for_rates([(100, 100)], 0.5, 0.05, 0.10, 2.75, 2.33)
    assert more is not None and 2000 < more < 4000  # ~1,600 a side for 5 -> 10% errors
    assert more_for_rates([(100, 100)], 0.5, 0.05, 0.05, 2.75, 2.33) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detect": {"latency": 1.0}}, r"detect\['latency'\] \(a ratio\)=1.0: use a number in \(1"),
        ({"detect": {"error_rate": 0}}, r"detect\['error_rate'\] \(a difference\)=0"),
        ({"detect": {"p99": 2.0}}, "detect for unknown metric 'p99'"),
        ({"detect": {"latency": 1.1}}, r"detect\['latency'\]=1.1: use a ratio above effect_fl"),
        (
            {"detect": {"latency": 1.3}, "effect_floor": {"latency": 1.4}},
            r"effect_floor\['latency'\]=1.4, the least slowdown that fails",
        ),
        ({"power": 0.3}, r"power=0.3: use a number in \[0.5, 1\)"),
        ({"power": 1.0}, "power=1.0"),
    ],
)
def test_bad_detection_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StatisticalJudge(**kwargs)  # type: ignore[arg-type]
