"""A seeded simulation of canary rollouts: synthetic requests, no services, milliseconds.

:class:`SimulatedTraffic` plays simulated traffic — each request routed to the
canary with the stage's probability, failing with its version's error rate, taking a
latency drawn uniformly from its version's range — from one seed, so a run replays exactly.
:func:`simulate_rollout` walks a judge through the stages as a canary controller does,
and :func:`seed_scenarios` replays two scenarios (a healthy canary, promoted; a buggy one, rolled back). The real rollout
(``canary.rollout``) drives real pools through the router; this loop is for fast tests and
for ``benchmarks/canary_judge.py``. See docs/canary-judge.md.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, final

from pytest_chaos.canary.judge import Judge, Observation, ThresholdJudge, Verdict

__all__ = [
    "BUGGY",
    "HEALTHY",
    "PRODUCTION",
    "SEED_STAGES",
    "SimulatedRollout",
    "SimulatedTraffic",
    "Version",
    "seed_scenarios",
    "simulate_rollout",
]

SEED_STAGES: tuple[float, ...] = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)


@final
@dataclass(frozen=True)
class Version:
    """How a version behaves: the share of its requests that fail, and the range its
    latencies are drawn from, uniformly (the seed: 50 ms x uniform(0.9, 1.1))."""

    error_rate: float = 0.005
    latency_ms: tuple[float, float] = (45.0, 55.0)

    def __post_init__(self) -> None:
        rate = self.error_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"error_rate={rate!r}: use a number in [0, 1]")
        low, high = self.latency_ms
        if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
            raise ValueError(f"latency_ms={self.latency_ms!r}: use (low, high), 0 <= low <= high")


PRODUCTION = Version()
"""The seed's production: 0.5% errors, 50 ms x uniform(0.9, 1.1)."""
HEALTHY = Version()
"""The seed's healthy canary (scenario 1): it behaves as production does."""
BUGGY = Version(error_rate=0.05, latency_ms=(75.0, 150.0))
"""The seed's buggy canary (scenario 2): 5% errors, 50 ms x uniform(1.5, 3.0)."""


@final
class SimulatedTraffic:
    """Requests to a baseline and a canary version, every draw from one seeded stream.

    ``rps`` spaces the requests' ``at`` times (the seed sent 100 a second); nothing waits.
    """

    def __init__(
        self, baseline: Version, canary: Version, *, seed: int, rps: float = 100.0
    ) -> None:
        if not (isinstance(rps, (int, float)) and math.isfinite(rps) and rps > 0):
            raise ValueError(f"rps={rps!r}: use a number above 0")
        self.baseline = baseline
        self.canary = canary
        self.seed = seed
        self.rps = rps
        self._random = random.Random(seed)
        self._sent = 0

    def __repr__(self) -> str:
        return (
            f"SimulatedTraffic(baseline={self.baseline}, canary={self.canary}, "
            f"seed={self.seed}, rps={self.rps:g})"
        )

    def requests(
        self, count: int, canary_percent: float
    ) -> tuple[list[Observation], list[Observation]]:
        """``count`` requests, each sent to the canary with probability ``canary_percent``
        / 100, returned as (canary, baseline)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count={count!r}: use a whole number, 0 or more")
        if not (isinstance(canary_percent, (int, float)) and 0 <= canary_percent <= 100):
            raise ValueError(f"canary_percent={canary_percent!r}: use a number in [0, 100]")
        draw = self._random.random
        share = canary_percent / 100.0
        c_rate, (c_low, c_high) = self.canary.error_rate, self.canary.latency_ms
        b_rate, (b_low, b_high) = self.baseline.error_rate, self.baseline.latency_ms
        c_span, b_span = c_high - c_low, b_high - b_low
        canary: list[Observation] = []
        baseline: list[Observation] = []
        step, sent = 1.0 / self.rps, self._sent
        for i in range(sent, sent + count):
            # the order of draws: route, error, latency
            if draw() < share:
                ok = draw() >= c_rate
                canary.append(Observation(c_low + c_span * draw(), ok, i * step))
            else:
                ok = draw() >= b_rate
                baseline.append(Observation(b_low + b_span * draw(), ok, i * step))
        self._sent = sent + count
        return canary, baseline


@final
@dataclass(frozen=True)
class SimulatedRollout:
    """What a simulated rollout did: ``"promoted"`` or ``"rolled_back"``, and the verdict
    after each stage it ran, as (canary percent, verdict)."""

    outcome: str
    stages: tuple[tuple[float, Verdict], ...]

    @property
    def rolled_back_at(self) -> float | None:
        """The percent of the stage whose verdict rolled the canary back; None if promoted."""
        return self.stages[-1][0] if self.outcome == "rolled_back" else None

    @property
    def verdict(self) -> Verdict:
        """The last verdict: the one that rolled back, or the last stage's."""
        return self.stages[-1][1]

    def to_json(self) -> dict[str, Any]:
        """A plain dict, for journals and reports."""
        return {
            "outcome": self.outcome,
            "rolled_back_at": self.rolled_back_at,
            "stages": [{"percent": p, "verdict": v.to_json()} for p, v in self.stages],
        }


def simulate_rollout(
    judge: Judge,
    traffic: SimulatedTraffic,
    *,
    stages: Sequence[float] = SEED_STAGES,
    requests_per_stage: int = 200,
    per_pool: bool = False,
) -> SimulatedRollout:
    """Walk ``judge`` through ``stages`` as a canary controller does: send a stage's
    traffic, judge everything each pool has served since the rollout began, roll back on
    ``fail``, advance otherwise (``inconclusive``, "not enough data yet",
    included); the verdict after the last stage promotes or rolls back.

    A stage is ``requests_per_stage`` requests split by the stage's percent
    (at 1% the canary sees about 2 of 200). With ``per_pool`` each stage instead sends
    ``requests_per_stage`` to the canary *and* as many to the baseline: Kayenta's
    canary-against-a-baseline-of-the-same-size, where the percent decides how long a stage
    takes in a real fleet, not how much evidence it yields.
    """
    if not stages:
        raise ValueError("stages is empty: give at least one canary percent")
    canary: list[Observation] = []
    baseline: list[Observation] = []
    judged: list[tuple[float, Verdict]] = []
    for percent in stages:
        if per_pool:
            canary += traffic.requests(requests_per_stage, 100.0)[0]
            baseline += traffic.requests(requests_per_stage, 0.0)[1]
        else:
            to_canary, to_baseline = traffic.requests(requests_per_stage, percent)
            canary += to_canary
            baseline += to_baseline
        verdict = judge.judge(canary, baseline)
        judged.append((float(percent), verdict))
        if verdict.outcome == "fail":
            return SimulatedRollout("rolled_back", tuple(judged))
    return SimulatedRollout("promoted", tuple(judged))


def seed_scenarios(
    *, seed: int = 0, judge: Judge | None = None
) -> tuple[SimulatedRollout, SimulatedRollout]:
    """Two simulated canary deployments: stages 1-100%, 100 requests a
    second for 2 s a stage (200 requests), judged by ``judge`` (a
    :class:`ThresholdJudge` by default). Scenario 1 (a healthy canary) and scenario 2 (a
    buggy one: 5% errors, 1.5-3x the latency), each from ``seed``."""
    chosen = judge if judge is not None else ThresholdJudge()
    healthy = SimulatedTraffic(PRODUCTION, HEALTHY, seed=seed)
    buggy = SimulatedTraffic(PRODUCTION, BUGGY, seed=seed)
    return simulate_rollout(chosen, healthy), simulate_rollout(chosen, buggy)
