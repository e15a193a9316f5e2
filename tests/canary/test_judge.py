"""The canary judges: the statistics against reference values, the statistical judge's
decision rules, and the threshold judge against the seed material's ``evaluate_canary``."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Sequence

import pytest

from pytest_chaos.canary.judge import (
    HL_PAIRS,
    Judge,
    MetricResult,
    Observation,
    StatisticalJudge,
    ThresholdJudge,
    Verdict,
    fisher_exact,
    hodges_lehmann,
    mann_whitney,
    newcombe_interval,
)
from pytest_chaos.canary.verdict import overall

# -- reference values ---------------------------------------------------------------------
# Produced with scipy 1.17.1 and statsmodels 0.15.0 in a separate venv (not a project
# dependency): python3 -m venv /tmp/scipyref && /tmp/scipyref/bin/pip install scipy
# statsmodels, then for each case
#   scipy.stats.mannwhitneyu(x, y, alternative=alt, method="asymptotic", use_continuity=True)
#   scipy.stats.fisher_exact([[a, n1 - a], [c, n2 - c]], alternative=alt)
#   statsmodels.stats.proportion.confint_proportions_2indep(a, n1, c, n2, method="newcomb",
#                                                          compare="diff", alpha=1 - conf)
#   numpy.median(numpy.subtract.outer(x, y))          (the Hodges-Lehmann shift)

SAMPLES: dict[str, tuple[list[float], list[float]]] = {
    "distinct": (
        [19.1, 22.4, 25.0, 27.3, 30.2, 31.8],
        [17.5, 18.2, 20.9, 21.7, 23.3, 24.6, 26.1],
    ),
    "ties": ([50, 52, 52, 55, 60, 60, 61, 70], [48, 50, 50, 52, 55, 55, 58, 59, 60]),
    "shifted": ([float(x) for x in range(60, 100, 2)], [float(x) for x in range(50, 90, 3)]),
    "canary_lower": ([1.0, 2.0, 3.0, 4.0, 5.0], [3.5, 4.5, 5.5, 6.5, 7.5, 8.5]),
}

# name: (U of the canary, {alternative: p})
MANN_WHITNEY = {
    "distinct": (
        33.0,
        {
            "greater": 0.05020624699305142,
            "less": 0.9629272344442966,
            "two-sided": 0.10041249398610284,
        },
    ),
    "ties": (
        49.0,
        {
            "greater": 0.11222469167291788,
            "less": 0.9052338889927771,
            "two-sided": 0.22444938334583575,
        },
    ),
    "shifted": (
        197.5,
        {
            "greater": 0.023002533644297555,
            "less": 0.9788396596628778,
            "two-sided": 0.04600506728859511,
        },
    ),
    "canary_lower": (
        3.0,
        {
            "greater": 0.9887605633169374,
            "less": 0.017881883295488944,
            "two-sided": 0.03576376659097789,
        },
    ),
}

# (canary errors, canary requests, baseline errors, baseline requests): greater, less, two-sided
FISHER = {
    (3, 200, 0, 200): (0.12406015037593984, 1.0, 0.24812030075187969),
    (12, 1200, 6, 1200): (0.11805447210669233, 0.9524936714296229, 0.23610894421338466),
    (5, 60, 1, 80): (0.0519078156930464, 0.9946636824988457, 0.08393819601850211),
    (0, 100, 0, 100): (1.0, 1.0, 1.0),
    (10, 50, 10, 50): (0.5984356088532747, 0.5984356088532747, 1.0),
    (1, 300, 9, 300): (0.999095095942885, 0.010233811862423612, 0.020467623724847225),
    (30, 1000, 12, 1000): (0.0036439767535842976, 0.9986954758654031, 0.007287953507168595),
}

# (canary errors, canary requests, baseline errors, baseline requests, confidence): low, high
# The first three are also Newcombe (1998)'s own examples (a), (b) and (d) for method 10.
NEWCOMBE = {
    (56, 70, 48, 80, 0.95): (0.05243147240236498, 0.333872654036906),
    (56, 70, 48, 80, 0.98): (0.024392520439844134, 0.3567009567772556),
    (9, 10, 3, 10, 0.95): (0.17052272393450302, 0.8090179735354881),
    (5, 56, 0, 29, 0.95): (-0.03813714790353688, 0.19256001385511162),
    (12, 1200, 6, 1200, 0.98): (-0.0038693244470632228, 0.014696257463094255),
    (0, 100, 0, 100, 0.95): (-0.03699349820698568, 0.03699349820698568),
}

HODGES_LEHMANN = {"distinct": 4.15, "ties": 2.0, "shifted": 9.5, "canary_lower": -3.0}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
@pytest.mark.parametrize("name", sorted(MANN_WHITNEY))
def test_mann_whitney_matches_scipy(name: str, alternative: str) -> None:
    x, y = SAMPLES[name]
    u, p = MANN_WHITNEY[name]
    test = mann_whitney(x, y, alternative)
    assert test.u == u
    assert close(test.p_value, p[alternative])


def test_mann_whitney_u_counts_the_pairs_where_the_canary_is_larger() -> None:
    rng = random.Random(3)
    for _ in range(20):
        x = [rng.randint(0, 9) for _ in range(rng.randint(1, 30))]
        y = [rng.randint(0, 9) for _ in range(rng.randint(1, 30))]
        pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in x for b in y)
        assert mann_whitney(x, y).u == pairs


def test_mann_whitney_with_every_value_equal_has_no_evidence() -> None:
    test = mann_whitney([50.0] * 60, [50.0] * 80)
    assert (test.u, test.z, test.p_value) == (2400.0, 0.0, 1.0)


def test_mann_whitney_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="alternative='bigger'"):
        mann_whitney([1.0], [2.0], "bigger")
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney([], [2.0])


@pytest.mark.parametrize("table", sorted(FISHER))
def test_fisher_exact_matches_scipy(table: tuple[int, int, int, int]) -> None:
    for alternative, expected in zip(("greater", "less", "two-sided"), FISHER[table], strict=True):
        assert close(fisher_exact(*table, alternative=alternative), expected), alternative


def test_fisher_exact_tails_add_up() -> None:
    """P(X >= x) + P(X <= x - 1) = 1 whichever tail is summed directly."""
    for x in range(0, 21):
        upper = fisher_exact(x, 400, 20 - x, 500, "greater")
        lower = fisher_exact(x - 1, 400, 21 - x, 500, "less") if x else 0.0
        assert math.isclose(upper + lower, 1.0, abs_tol=1e-12)


def test_fisher_exact_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="canary: 5 errors in 4 requests"):
        fisher_exact(5, 4, 0, 10)


@pytest.mark.parametrize("case", sorted(NEWCOMBE))
def test_newcombe_interval_matches_statsmodels(case: tuple[int, int, int, int, float]) -> None:
    low, high = newcombe_interval(*case[:4], confidence=case[4])
    assert close(low, NEWCOMBE[case][0])
    assert close(high, NEWCOMBE[case][1])


@pytest.mark.parametrize("name", sorted(HODGES_LEHMANN))
def test_hodges_lehmann_estimate_matches_numpy(name: str) -> None:
    x, y = SAMPLES[name]
    assert close(hodges_lehmann(x, y)[0], HODGES_LEHMANN[name])


def test_hodges_lehmann_interval_is_the_rank_based_one() -> None:
    """Bounds are the k-th smallest and largest pairwise differences, k = floor(n m / 2 -
    z sd(U)) (counted from 1), sd(U) with the tie correction."""
    x, y = SAMPLES["shifted"]
    diffs = sorted(a - b for a in x for b in y)
    n, m = len(x), len(y)
    assert len(set(x + y)) < n + m  # some values are in both samples: ties
    sd = mann_whitney(x, y, "two-sided").sd
    assert sd < math.sqrt(n * m * (n + m + 1) / 12)  # tie-corrected
    k = math.floor(n * m / 2 - statistics.NormalDist().inv_cdf(0.975) * sd)
    estimate, low, high = hodges_lehmann(x, y, confidence=0.95)
    assert (low, high) == (diffs[k - 1], diffs[-k])
    assert low < estimate < high


def test_hodges_lehmann_on_large_samples_is_close_to_the_exact_value() -> None:
    rng = random.Random(11)
    x = [rng.lognormvariate(4.0, 0.4) for _ in range(300)]
    y = [rng.lognormvariate(3.9, 0.4) for _ in range(400)]
    assert len(x) * len(y) > HL_PAIRS  # thinned
    diffs = sorted(a - b for a in x for b in y)
    exact = statistics.median(diffs)
    sd = mann_whitney(x, y).sd
    k = math.floor(len(diffs) / 2 - statistics.NormalDist().inv_cdf(0.975) * sd)
    estimate, low, high = hodges_lehmann(x, y)
    spread = statistics.pstdev(y)
    assert abs(estimate - exact) < 0.02 * spread
    assert abs(low - diffs[k - 1]) < 0.03 * spread
    assert abs(high - diffs[-k]) < 0.03 * spread


# -- the statistical judge -----------------------------------------------------------------


def pool(latencies: Sequence[float], errors: int = 0) -> list[Observation]:
    """Observations with these latencies, the first ``errors`` of them failed."""
    return [Observation(ms, ok=i >= errors) for i, ms in enumerate(latencies)]


def spread(n: int, low: float = 45.0, high: float = 55.0) -> list[float]:
    """``n`` latencies evenly over [low, high]: a sample with no randomness in it."""
    return [low + (high - low) * (i + 0.5) / n for i in range(n)]


def test_equal_pools_pass_with_every_number_reported() -> None:
    verdict = StatisticalJudge().judge(pool(spread(600), 3), pool(spread(600), 3))
    assert verdict.outcome == "pass"
    assert (verdict.canary_count, verdict.baseline_count) == (600, 600)
    assert verdict.needed is None
    errors, latency = verdict.metric("error_rate"), verdict.metric("latency")
    assert (errors.outcome, errors.canary, errors.baseline, errors.effect) == (
        "pass",
        0.005,
        0.005,
        0.0,
    )
    assert errors.p_value is not None and errors.p_value > 0.5
    assert errors.ci_low is not None and errors.ci_high is not None
    assert errors.ci_low < 0 < errors.ci_high
    assert latency.outcome == "pass" and latency.effect == 1.0
    assert latency.canary == latency.baseline == 50.0
    assert verdict.reason == f"{errors.detail} | {latency.detail}"
    assert "error rate 0.50% vs 0.50% (3/600 vs 3/600)" in errors.detail
    assert "latency p50 50.0 ms vs 50.0 ms: 1.00x" in latency.detail


def test_below_min_samples_is_inconclusive_never_fail() -> None:
    judge = StatisticalJudge(min_samples=50)
    terrible = pool([500.0] * 49, errors=49)
    for canary, baseline in ((terrible, pool(spread(1000))), (pool(spread(500)), terrible)):
        verdict = judge.judge(canary, baseline)
        assert verdict.outcome == "inconclusive"
        assert all(m.outcome == "inconclusive" for m in verdict.metrics)
        assert "need 50 in each" in verdict.reason
    assert judge.judge(pool([500.0] * 50, 50), pool(spread(50))).outcome == "fail"


def test_a_slower_canary_fails_on_latency_with_its_numbers() -> None:
    verdict = StatisticalJudge().judge(pool(spread(200, 67.5, 82.5)), pool(spread(200)))
    latency = verdict.metric("latency")
    assert verdict.outcome == latency.outcome == "fail"
    assert not verdict.critical  # latency is not critical by default
    assert latency.effect is not None and math.isclose(latency.effect, 1.5, rel_tol=0.01)
    assert latency.ci_low is not None and latency.ci_low > 1.1
    assert latency.p_value is not None and latency.p_value < 1e-15
    assert verdict.reason == latency.detail
    assert latency.detail.startswith("latency p50 75.0 ms vs 50.0 ms: 1.50x (HL shift +25.0 ms")
    assert latency.detail.endswith("floor 1.1x and 1 ms; Mann-Whitney p<1e-15 < 0.003")


def test_a_critical_metric_decides_the_verdict() -> None:
    canary = pool(spread(400, 67.5, 82.5), errors=40)
    verdict = StatisticalJudge().judge(canary, pool(spread(400), errors=2))
    assert [m.outcome for m in verdict.metrics] == ["fail", "fail"]
    assert verdict.outcome == "fail" and verdict.critical
    assert verdict.reason == verdict.metric("error_rate").detail
    # latency listed first and made critical: its failure is the reason
    judge = StatisticalJudge(metrics=("latency", "error_rate"), critical=("latency",))
    verdict = judge.judge(canary, pool(spread(400), errors=2))
    assert verdict.critical and verdict.reason == verdict.metric("latency").detail
    # nothing critical: the first failing metric gives the reason, and the verdict still fails
    verdict = StatisticalJudge(critical=()).judge(canary, pool(spread(400), errors=2))
    assert verdict.outcome == "fail" and not verdict.critical
    assert verdict.reason == verdict.metric("error_rate").detail


def test_significant_but_below_the_floor_is_marginal_then_pass() -> None:
    judge = StatisticalJudge()  # latency floor 1.1x, marginal from 1.05x
    baseline = pool(spread(2000))
    for factor, outcome in ((1.12, "fail"), (1.07, "marginal"), (1.03, "pass")):
        verdict = judge.judge(pool([ms * factor for ms in spread(2000)]), baseline)
        latency = verdict.metric("latency")
        assert latency.p_value is not None and latency.p_value < 1e-10, factor
        assert (latency.outcome, verdict.outcome) == (outcome, outcome), factor
    # the band can be closed
    verdict = StatisticalJudge(marginal=1.0).judge(
        pool([ms * 1.07 for ms in spread(2000)]), baseline
    )
    assert verdict.outcome == "pass"


def test_a_slowdown_not_surely_past_the_floor_is_marginal() -> None:
    """12% slower, certainly slower (p < 1e-20), but the interval reaches below 1.1x: the
    canary is not shown to be as much slower as the floor, so marginal (Kayenta classifies
    a metric High only when the interval's near end clears its bound); with more requests
    the interval narrows past the floor and it fails."""
    judge = StatisticalJudge(detect={"error_rate": None})
    few = judge.judge(pool([ms * 1.12 for ms in spread(100)]), pool(spread(100)))
    latency = few.metric("latency")
    assert latency.p_value is not None and latency.p_value < 1e-20
    assert latency.effect == pytest.approx(1.12)
    assert latency.ci_low is not None and latency.ci_low < 1.1
    assert (latency.outcome, few.outcome) == ("marginal", "marginal")
    many = judge.judge(pool([ms * 1.12 for ms in spread(2000)]), pool(spread(2000)))
    assert many.metric("latency").ci_low > 1.1  # type: ignore[operator]
    assert many.outcome == "fail"


def test_latency_must_also_be_slower_by_the_floor_in_milliseconds() -> None:
    """Two instances of a sub-millisecond service: 0.9 against 0.7 ms is 1.29x and certain,
    but 0.2 ms is no regression worth a rollback."""
    canary, baseline = pool(spread(400, 0.8, 1.0)), pool(spread(400, 0.6, 0.8))
    verdict = StatisticalJudge().judge(canary, baseline)
    latency = verdict.metric("latency")
    assert latency.p_value is not None and latency.p_value < 1e-15
    assert latency.effect is not None and latency.effect > 1.25
    assert (latency.outcome, verdict.outcome) == ("pass", "pass")
    strict = StatisticalJudge(effect_floor={"latency_ms": 0.0})
    assert strict.judge(canary, baseline).outcome == "fail"
    # 1.14x and +0.7 ms on a 5 ms service: past the ratio, half-way on the shift
    slower = pool([ms + 0.7 for ms in spread(400, 4.0, 6.0)])
    assert StatisticalJudge().judge(slower, pool(spread(400, 4.0, 6.0))).outcome == "marginal"


def test_at_the_floor_with_p_between_alpha_and_twice_alpha_is_marginal() -> None:
    # alpha 0.003, error floor 0.2 points; no power asked of 200 requests a side (tested below)
    judge = StatisticalJudge(detect={"error_rate": None})
    for errors, outcome in ((8, "marginal"), (9, "fail"), (7, "pass")):
        p = fisher_exact(errors, 200, 0, 200)
        verdict = judge.judge(pool(spread(200), errors), pool(spread(200)))
        result = verdict.metric("error_rate")
        assert result.p_value == p
        assert result.outcome == outcome, (errors, p)
        if outcome == "marginal":
            assert judge.alpha <= p < 2 * judge.alpha
            assert verdict.outcome == "marginal" and verdict.reason == result.detail
            assert result.detail.endswith(f"Fisher p={p:.2g} >= 0.003")


def test_a_large_but_insignificant_difference_is_no_failure() -> None:
    """2 errors in 50 against none: not significant. 50 requests a side could not have
    shown the five points the judge is told to detect either, so it is inconclusive, not a
    pass; asked for nothing of the kind, it passes."""
    canary, baseline = pool(spread(50), 2), pool(spread(50))
    verdict = StatisticalJudge().judge(canary, baseline)
    errors = verdict.metric("error_rate")
    assert errors.effect == 0.04 and errors.p_value is not None and errors.p_value > 0.2
    assert (errors.outcome, verdict.outcome) == ("inconclusive", "inconclusive")
    assert errors.needed is not None and errors.needed > 100
    lenient = StatisticalJudge(detect={"error_rate": None}).judge(canary, baseline)
    assert lenient.outcome == "pass" and lenient.needed is None


def test_ties_and_all_equal_latencies() -> None:
    same = StatisticalJudge().judge(pool([50.0] * 400), pool([50.0] * 400))
    latency = same.metric("latency")
    assert (same.outcome, latency.p_value, latency.effect) == ("pass", 1.0, 1.0)
    assert (latency.ci_low, latency.ci_high) == (1.0, 1.0)
    # whole-millisecond latencies: ties everywhere, a 20% shift still fails
    rounded = [float(round(ms)) for ms in spread(400)]
    slow = StatisticalJudge().judge(pool([ms + 10 for ms in rounded]), pool(rounded))
    assert slow.metric("latency").outcome == "fail"


def test_zero_errors_on_both_sides_pass() -> None:
    verdict = StatisticalJudge().judge(pool(spread(400)), pool(spread(400)))
    errors = verdict.metric("error_rate")
    assert (errors.outcome, errors.p_value, errors.effect) == ("pass", 1.0, 0.0)
    assert errors.ci_low is not None and errors.ci_high is not None
    assert errors.ci_low < 0 < errors.ci_high


def test_direction_says_which_way_is_bad() -> None:
    faster, baseline = pool(spread(400, 30.0, 37.0)), pool(spread(400))
    assert StatisticalJudge().judge(faster, baseline).outcome == "pass"
    decrease = StatisticalJudge(direction={"latency": "decrease"})
    assert decrease.judge(faster, baseline).metric("latency").outcome == "fail"
    either = StatisticalJudge(direction={"latency": "either"})
    assert either.judge(faster, baseline).metric("latency").outcome == "fail"
    slower = pool(spread(400, 67.5, 82.5))
    assert decrease.judge(slower, baseline).metric("latency").outcome == "pass"
    assert either.judge(slower, baseline).metric("latency").outcome == "fail"
    # fewer errors than the baseline is bad only when asked
    fewer = StatisticalJudge(direction={"error_rate": "decrease"})
    verdict = fewer.judge(pool(spread(400)), pool(spread(400), errors=40))
    assert verdict.metric("error_rate").outcome == "fail"
    assert StatisticalJudge().judge(pool(spread(400)), pool(spread(400), 40)).outcome == "pass"


def test_one_metric_only() -> None:
    judge = StatisticalJudge(metrics=("latency",), critical=())
    verdict = judge.judge(pool(spread(100), errors=100), pool(spread(100)))
    assert [m.metric for m in verdict.metrics] == ["latency"]
    assert verdict.outcome == "pass"


def test_the_same_requests_give_the_same_verdict_in_any_order() -> None:
    rng = random.Random(5)
    canary = [Observation(rng.uniform(45, 60), rng.random() > 0.01) for _ in range(3000)]
    baseline = [Observation(rng.uniform(45, 55), rng.random() > 0.005) for _ in range(3000)]
    judge = StatisticalJudge()
    first = judge.judge(canary, baseline)
    assert judge.judge(list(canary), list(baseline)) == first
    assert judge.judge(canary[::-1], sorted(baseline, key=lambda o: o.latency_ms)) == first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ()}, "name each metric once"),
        ({"metrics": ("latency", "latency")}, "name each metric once"),
        ({"metrics": ("cpu",)}, "unknown metric 'cpu'"),
        ({"alpha": 0.0}, r"alpha=0.0: use a number in \(0, 0.5\)"),
        ({"alpha": 0.7}, "alpha=0.7"),
        ({"min_samples": 1}, "min_samples=1: use a whole number, 2 or more"),
        ({"min_samples": 10.5}, "min_samples=10.5"),
        ({"marginal": 0.5}, r"marginal=0.5: use a number in \[1, inf\]"),
        ({"effect_floor": {"latency": 0.9}}, r"effect_floor\['latency'\] \(a ratio\)=0.9"),
        ({"effect_floor": {"error_rate": -0.1}}, "effect_floor"),
        ({"effect_floor": {"latency_ms": -1}}, r"effect_floor\['latency_ms'\] \(a shift\)=-1"),
        ({"effect_floor": {"p99": 1.2}}, "effect_floor for unknown metric 'p99'"),
        ({"direction": {"latency": "up"}}, r"direction\['latency'\]='up': use one of"),
        ({"direction": {"p99": "increase"}}, "direction for unknown metric 'p99'"),
        ({"critical": ("latency",), "metrics": ("error_rate",)}, "critical metric 'latency'"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StatisticalJudge(**kwargs)  # type: ignore[arg-type]  # bad settings on purpose


def test_combining_metric_outcomes() -> None:
    def result(outcome: str, critical: bool = False, name: str = "m") -> MetricResult:
        return MetricResult(name, outcome, None, None, f"{name} {outcome}", critical=critical)

    cases = [
        (["pass", "fail"], "fail"),
        (["marginal", "pass"], "marginal"),
        (["marginal", "fail"], "fail"),
        (["inconclusive", "inconclusive"], "inconclusive"),
        (["inconclusive", "pass"], "pass"),
        (["inconclusive", "marginal"], "marginal"),
        (["pass", "pass"], "pass"),
    ]
    for outcomes, expected in cases:
        verdict = overall(tuple(result(o) for o in outcomes), 1, 1, healthy="")
        assert verdict.outcome == expected, outcomes
    both = (result("fail", name="a"), result("fail", critical=True, name="b"))
    verdict = overall(both, 1, 1, healthy="")
    assert (verdict.reason, verdict.critical) == ("b fail", True)


def test_verdicts_are_json() -> None:
    verdict = StatisticalJudge().judge(pool(spread(100, 70, 80), 10), pool(spread(100)))
    data = json.loads(json.dumps(verdict.to_json(), allow_nan=False))
    assert data["outcome"] == "fail" and data["critical"] is True
    assert (data["canary_count"], data["baseline_count"]) == (100, 100)
    assert [m["metric"] for m in data["metrics"]] == ["error_rate", "latency"]
    assert set(data["metrics"][0]) == {
        "metric",
        "outcome",
        "canary",
        "baseline",
        "detail",
        "p_value",
        "effect",
        "ci_low",
        "ci_high",
        "critical",
        "needed",
    }
    with pytest.raises(KeyError, match="no metric 'cpu'"):
        verdict.metric("cpu")
    # a zero baseline median makes the ratio infinite: JSON gets null
    zero = StatisticalJudge().judge(pool([5.0] * 60), pool([0.0] * 60))
    assert zero.metric("latency").effect == math.inf
    assert zero.to_json()["metrics"][1]["effect"] is None


def test_both_judges_are_judges() -> None:
    assert isinstance(StatisticalJudge(), Judge)
    assert isinstance(ThresholdJudge(), Judge)


# -- the seed's rules ------------------------------------------------------------------------


def seed_evaluate(canary: Sequence[Observation], production: Sequence[Observation]) -> str:
    """The seed material's ``CanaryDeploymentController.evaluate_canary`` (chapter 19),
    its ``DeploymentMetrics`` computed from the observations: the reference."""
    c_count, p_count = len(canary), len(production)
    c_rate = sum(not o.ok for o in canary) / c_count if c_count else 0.0
    p_rate = sum(not o.ok for o in production) / p_count if p_count else 0.0
    c_p50 = statistics.median(o.latency_ms for o in canary) if canary else 0.0
    p_p50 = statistics.median(o.latency_ms for o in production) if production else 0.0
    if c_count < 100:
        return "Not enough data yet"
    if c_rate > 0.01:
        return f"Error rate too high: {c_rate:.2%}"
    if p_count > 0:
        error_ratio = c_rate / max(p_rate, 0.001)
        if error_ratio > 2.0:
            return f"Error rate {error_ratio:.1f}x higher than production"
    if p_p50 > 0:
        latency_ratio = c_p50 / p_p50
        if latency_ratio > 1.5:
            return f"Latency {latency_ratio:.1f}x higher than production"
    return "Canary is healthy"


def test_threshold_judge_says_what_the_seed_says() -> None:
    judge = ThresholdJudge()
    rng = random.Random(19)
    seen = set()
    for _ in range(600):
        nc, np_ = rng.choice([50, 99, 100, 150, 400]), rng.choice([0, 10, 300, 2000])
        c_err, p_err = rng.choice([0.0, 0.005, 0.01, 0.02, 0.05]), rng.choice([0, 0.005, 0.02])
        c_slow = rng.choice([1.0, 1.3, 1.6, 2.0])
        canary = [
            Observation(50 * c_slow * rng.uniform(0.9, 1.1), rng.random() >= c_err)
            for _ in range(nc)
        ]
        production = [
            Observation(50 * rng.uniform(0.9, 1.1), rng.random() >= p_err) for _ in range(np_)
        ]
        expected = seed_evaluate(canary, production)
        verdict = judge.judge(canary, production)
        healthy = expected in ("Not enough data yet", "Canary is healthy")
        assert (verdict.outcome != "fail") == healthy, (expected, verdict.reason)
        assert verdict.reason.startswith(expected), (expected, verdict.reason)
        assert (verdict.outcome == "inconclusive") == (expected == "Not enough data yet")
        seen.add(expected.split(":")[0].split(" ")[0] + ("x" if "x higher" in expected else ""))
    assert seen == {"Not", "Error", "Errorx", "Latencyx", "Canary"}  # every rule was reached


def test_threshold_judge_messages_carry_the_numbers() -> None:
    judge = ThresholdJudge()
    base = pool([50.0] * 1000, errors=5)  # 0.50%, p50 50 ms
    assert judge.judge(pool([50.0] * 99), base).reason == (
        "Not enough data yet: 99 canary requests < 100"
    )
    too_high = judge.judge(pool([50.0] * 200, errors=10), base)
    assert too_high.reason == "Error rate too high: 5.00% > 1.00%"
    assert too_high.metric("error_rate").outcome == "fail"
    ratio = judge.judge(pool([50.0] * 400, errors=4), pool([50.0] * 1000, errors=3))
    assert ratio.reason == ("Error rate 3.3x higher than production: 1.00% vs 0.30%, 3.33x > 2x")
    slow = judge.judge(pool([80.0] * 200), base)
    assert slow.reason == (
        "Latency 1.6x higher than production: p50 80.0 ms vs 50.0 ms: 1.60x > 1.5x"
    )
    assert slow.metric("latency_p50").effect == 1.6
    healthy = judge.judge(pool([50.0] * 200, errors=1), base)
    assert (healthy.outcome, healthy.reason) == ("pass", "Canary is healthy")
    assert [m.detail for m in healthy.metrics] == [
        "error rate 0.50% <= 1.00%",
        "error rate 0.50% vs 0.50%: 1.00x <= 2x",
        "p50 50.0 ms vs 50.0 ms: 1.00x <= 1.5x",
    ]


def test_threshold_judge_limits_are_strict_as_the_seed_s() -> None:
    judge = ThresholdJudge()
    at_ceiling = pool([75.0] * 200, errors=2)  # exactly 1% errors, exactly 1.5x
    verdict = judge.judge(at_ceiling, pool([50.0] * 200, errors=1))  # exactly 2x errors
    assert verdict.outcome == "pass", verdict.reason
    # the baseline's rate is floored at 0.1%: 0.3% errors against none is 3x
    verdict = judge.judge(pool([50.0] * 1000, errors=3), pool([50.0] * 1000))
    assert verdict.reason.startswith("Error rate 3.0x higher than production")


def test_threshold_judge_without_production_checks_only_the_ceiling() -> None:
    verdict = ThresholdJudge().judge(pool([500.0] * 100), [])
    assert verdict.outcome == "pass" and verdict.reason == "Canary is healthy"
    assert [m.outcome for m in verdict.metrics] == ["pass", "inconclusive", "inconclusive"]
    failed = ThresholdJudge().judge(pool([50.0] * 100, errors=2), [])
    assert failed.reason == "Error rate too high: 2.00% > 1.00%"


def test_threshold_judge_settings() -> None:
    judge = ThresholdJudge(min_requests=10, error_rate_max=0.1, latency_p50_ratio_max=3)
    assert judge.judge(pool([120.0] * 10, errors=1), pool([50.0] * 10, 1)).outcome == "pass"
    with pytest.raises(ValueError, match="min_requests=0"):
        ThresholdJudge(min_requests=0)
    with pytest.raises(ValueError, match="error_rate_max=2"):
        ThresholdJudge(error_rate_max=2)


def test_verdict_is_a_plain_value() -> None:
    verdict = Verdict("pass", (), 0, 0, "ok")
    assert verdict.to_json() == {
        "outcome": "pass",
        "reason": "ok",
        "critical": False,
        "canary_count": 0,
        "baseline_count": 0,
        "needed": None,
        "metrics": [],
    }
