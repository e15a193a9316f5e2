"""The seeded simulation: traffic that replays from its seed, rollouts that walk the stages
as the seed's controller does, and the seed material's two scenarios."""

from __future__ import annotations

import json
import statistics

import pytest

from pytest_chaos.canary.judge import Observation, StatisticalJudge, ThresholdJudge, Verdict
from pytest_chaos.canary.simulate import (
    BUGGY,
    HEALTHY,
    PRODUCTION,
    SEED_STAGES,
    SimulatedRollout,
    SimulatedTraffic,
    Version,
    seed_scenarios,
    simulate_rollout,
)

from ..doc_examples import examples_test


def test_the_same_seed_replays_the_same_requests() -> None:
    def run(seed: int) -> list[tuple[list[Observation], list[Observation]]]:
        traffic = SimulatedTraffic(PRODUCTION, BUGGY, seed=seed)
        return [traffic.requests(200, percent) for percent in SEED_STAGES]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_requests_are_split_by_the_canary_percent() -> None:
    traffic = SimulatedTraffic(PRODUCTION, HEALTHY, seed=1)
    canary, baseline = traffic.requests(300, 0)
    assert (len(canary), len(baseline)) == (0, 300)
    canary, baseline = traffic.requests(300, 100)
    assert (len(canary), len(baseline)) == (300, 0)
    canary, baseline = traffic.requests(20_000, 25)
    share = len(canary) / 20_000
    assert abs(share - 0.25) < 4 * (0.25 * 0.75 / 20_000) ** 0.5
    assert len(canary) + len(baseline) == 20_000


def test_requests_follow_their_version() -> None:
    traffic = SimulatedTraffic(Version(0.0, (10.0, 20.0)), Version(0.2, (100.0, 100.0)), seed=2)
    canary, baseline = traffic.requests(20_000, 50)
    assert all(o.ok and 10.0 <= o.latency_ms <= 20.0 for o in baseline)
    assert all(o.latency_ms == 100.0 for o in canary)
    errors = sum(not o.ok for o in canary) / len(canary)
    assert abs(errors - 0.2) < 4 * (0.2 * 0.8 / len(canary)) ** 0.5
    assert abs(statistics.fmean(o.latency_ms for o in baseline) - 15.0) < 0.1


def test_requests_are_spaced_by_the_rate() -> None:
    traffic = SimulatedTraffic(PRODUCTION, HEALTHY, seed=3, rps=100)
    first = traffic.requests(3, 0)[1]
    second = traffic.requests(2, 0)[1]
    assert [o.at for o in first + second] == [0.0, 0.01, 0.02, 0.03, 0.04]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Version(error_rate=1.5), "error_rate=1.5"),
        (lambda: Version(latency_ms=(60.0, 50.0)), r"latency_ms=\(60.0, 50.0\)"),
        (lambda: Version(latency_ms=(-1.0, 5.0)), "latency_ms"),
        (lambda: SimulatedTraffic(PRODUCTION, HEALTHY, seed=0, rps=0), "rps=0"),
        (lambda: SimulatedTraffic(PRODUCTION, HEALTHY, seed=0).requests(-1, 5), "count=-1"),
        (lambda: SimulatedTraffic(PRODUCTION, HEALTHY, seed=0).requests(10, 101), "percent=101"),
        (
            lambda: simulate_rollout(
                ThresholdJudge(), SimulatedTraffic(PRODUCTION, HEALTHY, seed=0), stages=()
            ),
            "stages is empty",
        ),
    ],
)
def test_bad_input_is_refused_by_name(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def first_stage_with(rollout: SimulatedRollout, canary_requests: int) -> float | None:
    """The first judged stage at which the canary had served that many requests."""
    for percent, verdict in rollout.stages:
        if verdict.canary_count >= canary_requests:
            return percent
    return None


def test_seed_scenario_1_is_promoted_and_scenario_2_rolled_back() -> None:
    healthy, buggy = seed_scenarios(seed=0)
    assert healthy.outcome == "promoted" and healthy.rolled_back_at is None
    assert [p for p, _ in healthy.stages] == list(SEED_STAGES)
    assert healthy.verdict.reason == "Canary is healthy"
    # the seed's judge waits for 100 canary requests, counted over the whole rollout: at 200
    # requests a stage the canary has served ~2, 12, 32, 82, 182 of them by the end of the
    # 1, 5, 10, 25 and 50% stages, so the first judgement comes at 50%
    assert [v.outcome for _, v in healthy.stages[:4]] == ["inconclusive"] * 4
    assert buggy.outcome == "rolled_back" and buggy.rolled_back_at == 50.0
    assert buggy.verdict.reason.startswith("Error rate too high: ")
    assert [v.outcome for _, v in buggy.stages] == ["inconclusive"] * 4 + ["fail"]


@pytest.mark.parametrize("seed", range(10))
def test_the_buggy_canary_is_rolled_back_at_the_first_stage_with_enough_data(seed: int) -> None:
    for judge, enough in ((ThresholdJudge(), 100), (StatisticalJudge(), 50)):
        buggy = seed_scenarios(seed=seed, judge=judge)[1]
        assert buggy.outcome == "rolled_back"
        stage = first_stage_with(buggy, enough)
        if isinstance(judge, StatisticalJudge):  # 50 in *each* pool; the baseline has more
            assert all(v.baseline_count >= 50 for p, v in buggy.stages if p == stage)
        assert buggy.rolled_back_at == stage, (type(judge).__name__, buggy.to_json())


def test_the_statistical_judge_promotes_healthy_canaries_the_seed_s_rules_roll_back() -> None:
    """Over 40 seeds of the seed's scenario 1 the threshold rules roll back 16 healthy
    canaries (one error too many in ~180 requests is over the 1% ceiling, or 2x a
    production rate measured low); the statistical judge none. Its closest call is a real
    fluke, 4 errors in 181 canary requests against 1 in 819 (p = 0.0045): too few requests
    to rule out five points more, so inconclusive; 6 in 381 at the last stage, marginal.
    Both are shown in the journal; neither is a rollback."""
    threshold = [s for s in range(40) if seed_scenarios(seed=s)[0].outcome == "rolled_back"]
    judge = StatisticalJudge()
    statistical = [
        s for s in range(40) if seed_scenarios(seed=s, judge=judge)[0].outcome == "rolled_back"
    ]
    assert len(threshold) == 16
    assert statistical == []
    stages = dict(seed_scenarios(seed=15, judge=judge)[0].stages)
    fluke = stages[50.0].metric("error_rate")
    assert fluke.outcome == "inconclusive" and "(4/181 vs 1/819)" in fluke.detail
    assert fluke.p_value is not None and fluke.p_value < 2 * judge.alpha
    last = stages[100.0].metric("error_rate")
    assert last.outcome == "marginal" and "(6/381 vs 1/819)" in last.detail
    assert seed_scenarios(seed=2)[0].verdict.reason.startswith("Error rate 4.8x higher")


def test_seed_scenarios_replay_from_their_seed() -> None:
    def run(seed: int) -> str:
        return json.dumps([r.to_json() for r in seed_scenarios(seed=seed)])

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_per_pool_stages_feed_both_pools_equally() -> None:
    traffic = SimulatedTraffic(PRODUCTION, HEALTHY, seed=5)
    rollout = simulate_rollout(StatisticalJudge(), traffic, requests_per_stage=150, per_pool=True)
    counts = [(v.canary_count, v.baseline_count) for _, v in rollout.stages]
    assert counts == [(150 * i, 150 * i) for i in range(1, 7)]
    assert rollout.outcome == "promoted"


def test_inconclusive_advances_and_fail_stops() -> None:
    class Script:
        """A judge that answers from a script, recording what it saw."""

        def __init__(self, outcomes: list[str]) -> None:
            self.outcomes, self.seen = outcomes, []  # type: ignore[var-annotated]

        def judge(self, canary: list[Observation], baseline: list[Observation]) -> Verdict:
            self.seen.append(len(canary) + len(baseline))
            return Verdict(self.outcomes.pop(0), (), len(canary), len(baseline), "scripted")

    script = Script(["inconclusive", "marginal", "pass", "fail", "pass"])
    traffic = SimulatedTraffic(PRODUCTION, HEALTHY, seed=0)
    rollout = simulate_rollout(script, traffic, stages=(1, 5, 10, 25, 50), requests_per_stage=10)  # type: ignore[arg-type]  # a wrong type on purpose
    assert rollout.outcome == "rolled_back" and rollout.rolled_back_at == 25.0
    assert script.seen == [10, 20, 30, 40]  # cumulative: everything since the start
    script = Script(["inconclusive"] * 3)
    rollout = simulate_rollout(script, traffic, stages=(10, 50, 100))  # type: ignore[arg-type]  # a wrong type on purpose
    assert rollout.outcome == "promoted"  # as the seed: "not enough data yet" moves on


def test_a_rollout_is_json() -> None:
    buggy = seed_scenarios(seed=0)[1]
    data = json.loads(json.dumps(buggy.to_json(), allow_nan=False))
    assert data["outcome"] == "rolled_back" and data["rolled_back_at"] == 50.0
    assert [s["percent"] for s in data["stages"]] == [1.0, 5.0, 10.0, 25.0, 50.0]
    assert data["stages"][-1]["verdict"]["outcome"] == "fail"


test_the_docs_example_runs = examples_test("canary-judge.md")
