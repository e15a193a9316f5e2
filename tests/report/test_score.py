"""The resilience score (LitmusChaos's formula), the gates, and how a test's checks and
verdict are read from its report and its experiments' journals."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_chaos.report.results import ChaosResult, count_checks
from pytest_chaos.report.score import Gates, Score


def result(nodeid: str, verdict: str, weight: int, passed: int, total: int) -> ChaosResult:
    return ChaosResult(
        nodeid=nodeid,
        verdict=verdict,
        weight=weight,
        seed=7,
        checks_passed=passed,
        checks_total=total,
        success_ratio=passed / total if total else 0.0,
    )


def test_the_score_weighs_each_tests_success_ratio() -> None:
    """Litmus: sum(weight x success ratio) / sum(weight), as a percentage."""
    score = Score.of(
        [
            result("a", "passed", 5, 10, 10),
            result("b", "deviated", 3, 6, 8),  # 0.75
            result("c", "failed", 2, 0, 1),
        ]
    )
    assert score.value == round(100 * (5 * 1 + 3 * 0.75 + 2 * 0) / 10, 1) == 72.5


def test_skipped_and_expected_failures_do_not_count() -> None:
    score = Score.of(
        [
            result("a", "passed", 1, 1, 1),
            result("s", "skipped", 10, 0, 0),
            result("x", "xfailed", 10, 0, 3),
        ]
    )
    assert score.value == 100
    assert score.totals() == {
        "tests": 3,
        "passed": 1,
        "deviated": 0,
        "halted": 0,
        "not steady": 0,
        "failed": 0,
        "error": 0,
        "skipped": 1,
        "xfailed": 1,
    }


def test_no_scored_test_means_no_score_and_a_min_score_gate_fails() -> None:
    score = Score.of([result("s", "skipped", 1, 0, 0)])
    assert score.value is None
    assert Gates(min_score=50).failures(score) == [
        "no chaos test ran, so there is no score to hold to --chaos-min-score 50"
    ]
    assert Gates().failures(score) == [] and not Gates().active


def test_a_failing_min_score_lists_what_pulled_it_down_worst_first() -> None:
    score = Score.of(
        [
            result("t::ok", "passed", 4, 2, 2),
            result("t::slow", "deviated", 2, 1, 2),  # loses 2 x 0.5 / 10 = 10 points
            result("t::down", "failed", 4, 0, 1),  # loses 40 points
        ]
    )
    assert score.value == 50
    assert Gates(min_score=50).failures(score) == []
    (failure,) = Gates(min_score=80).failures(score)
    assert failure == (
        "resilience score 50 < --chaos-min-score 80; pulled down by: "
        "t::down failed (0/1 checks, weight 4, -40); "
        "t::slow deviated (1/2 checks, weight 2, -10)"
    )


@pytest.mark.parametrize(
    ("max_deviated", "fails"), [(None, False), (3, False), (2, False), (1, True), (0, True)]
)
def test_the_deviation_gate_counts_deviated_and_halted(
    max_deviated: int | None, fails: bool
) -> None:
    score = Score.of(
        [
            result("a", "deviated", 1, 1, 2),
            result("b", "halted", 1, 0, 2),
            result("c", "failed", 1, 0, 1),
            result("d", "passed", 1, 1, 1),
        ]
    )
    failures = Gates(max_deviated=max_deviated).failures(score)
    assert bool(failures) is fails
    if fails:
        assert failures == [f"2 experiment(s) deviated > --chaos-max-deviated {max_deviated}: a, b"]


def journal(
    before: dict[str, Any] | None, after: dict[str, Any] | None, during: tuple[Any, ...] = ()
) -> dict[str, Any]:
    return {"steady_states": {"before": before, "during": list(during), "after": after}}


def probes(*met: bool) -> dict[str, Any]:
    return {"probes": [{"tolerance_met": m} for m in met]}


def test_checks_count_every_probe_before_during_and_after() -> None:
    first = journal(probes(True, True), probes(True, False), during=(probes(False), probes(True)))
    second = journal(probes(True), None)  # not steady before: nothing after
    assert count_checks([first]) == (4, 6)
    assert count_checks([first, second]) == (5, 7)
    assert count_checks([{"steady_states": {}}, {}]) == (0, 0)


def test_a_result_survives_json() -> None:
    original = result("t::x", "deviated", 3, 1, 2)
    original.faults = ["latency of db"]
    original.journals = [{"status": "completed"}]
    copy = ChaosResult.from_json(original.to_json())
    assert copy == original
    assert copy.replay == "pytest --chaos-seed 7 t::x"
