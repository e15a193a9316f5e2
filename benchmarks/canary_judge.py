"""How often each canary judge rolls back a good release, and how often it catches a bad one
(issue 7): the seed material's ThresholdJudge and the StatisticalJudge side by side, over
many seeded simulated rollouts (``pytest_chaos.canary.simulate``; no services).

Traffic is the seed's: production fails 0.5% of requests and answers in 50 ms x
uniform(0.9, 1.1). The canary is equal to production, has twice its errors (1%), answers
50% slower (75 ms x uniform(0.9, 1.1)), or is the seed's buggy canary (5% errors, 50 ms x
uniform(1.5, 3.0)). Two more pairs fail 5% of production's requests: an equal canary, and
one with twice the errors (10%). A rollout walks the stages 1, 5, 10, 25, 50, 100%, judging after each
stage everything both pools served since it began, and stops at the first ``fail``
(``simulate_rollout``). Both judges see the very same requests (same seeds).

Two readings of "200 requests per stage":

- **per pool** (the gated one): each stage sends 200 requests to the canary and 200 to a
  baseline pool of the same size, as Kayenta compares a canary with a baseline cluster; the
  canary has served 1,200 requests by the end.
- **seed split**: 200 requests a stage in all, routed by the stage's percent as the seed
  does; the canary has served about 382 by the end (2 in the 1% stage).

Targets for the statistical judge, per pool (exit code 1 when one is missed): false
rollbacks (equal canary, at 0.5% and at 5% errors) <= 1%, detection (errors x2 from 5% to
10%, latency +50%) >= 95%. Doubling the seed's 0.5% is measured but not gated: 1,200 canary
requests hold about 6 errors against 12, and no judge can tell those apart 95% of the time
at 1% false rollbacks. Next to each errors-x2 detection the run prints the most that *any*
judge could reach with that many canary requests: the power of the Neyman-Pearson test that
knows both error rates, at a 1% false-rollback rate (a rollout that judges after every
stage decides on a prefix of the same requests, so it cannot do better). Last, what one ``judge()`` call costs with 5,000
requests a side.

    python3 benchmarks/canary_judge.py [--rollouts 1000] [--requests-per-stage 200]
        [--jobs N] [--scenarios equal,equal-5,errors,errors-0.5,latency,bug]
        [--modes pool,seed]
        [--alpha A] [--error-floor F] [--latency-floor R] [--latency-floor-ms MS]
        [--min-samples N]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_chaos.canary.judge import Judge, StatisticalJudge, ThresholdJudge
from pytest_chaos.canary.simulate import (
    BUGGY,
    PRODUCTION,
    SEED_STAGES,
    SimulatedTraffic,
    Version,
    simulate_rollout,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import CpuMeter

BUSY = Version(error_rate=0.05)
"""A production that fails 5% of its requests: enough errors in 200 for a doubling to show."""
SCENARIOS: dict[str, tuple[str, Version, Version]] = {
    "equal": ("equal", PRODUCTION, PRODUCTION),
    "equal-5": ("equal, 5%", BUSY, BUSY),
    "errors": ("errors 5->10%", BUSY, Version(error_rate=0.1)),
    "errors-0.5": ("errors .5->1%", PRODUCTION, Version(error_rate=0.01)),
    "latency": ("latency +50%", PRODUCTION, Version(latency_ms=(67.5, 82.5))),
    "bug": ("seed's bug", PRODUCTION, BUGGY),
}
ERROR_DOUBLINGS = ("errors", "errors-0.5")
MODES = {"pool": ("per pool", True), "seed": ("seed split", False)}
JUDGES = ("threshold", "statistical")
FALSE_ROLLBACKS_MAX = 0.01
DETECTION_MIN = 0.95


@dataclass(frozen=True)
class Job:
    """A chunk of rollouts for one worker: which traffic, which seeds, which judges."""

    scenario: str
    per_pool: bool
    seeds: range
    requests_per_stage: int
    statistical: dict[str, Any]


def judges(statistical: dict[str, Any]) -> dict[str, Judge]:
    return {"threshold": ThresholdJudge(), "statistical": StatisticalJudge(**statistical)}


def run(job: Job) -> dict[str, list[float | None]]:
    """Where each rollout of the chunk was rolled back (stage percent), None if promoted."""
    _, production, canary = SCENARIOS[job.scenario]
    out: dict[str, list[float | None]] = {name: [] for name in JUDGES}
    for name, judge in judges(job.statistical).items():
        for seed in job.seeds:
            traffic = SimulatedTraffic(production, canary, seed=seed)
            rollout = simulate_rollout(
                judge, traffic, requests_per_stage=job.requests_per_stage, per_pool=job.per_pool
            )
            out[name].append(rollout.rolled_back_at)
    return out


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    centre = (hits + z * z / 2) / (n + z * z)
    half = z * math.sqrt(hits * (n - hits) / n + z * z / 4) / (n + z * z)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    below = sum(
        math.exp(
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
        for i in range(min(k, n + 1))
    )
    return max(0.0, 1.0 - below)


def best_detection(n: int, p0: float, p1: float, level: float) -> float:
    """The power of the most powerful (randomised Neyman-Pearson) test of ``n`` canary
    requests' error count, rate ``p0`` against ``p1 > p0``, at false-positive ``level``."""
    k = next(k for k in range(n + 2) if binomial_tail(n, p0, k) <= level)
    at_edge = binomial_tail(n, p0, k - 1) - binomial_tail(n, p0, k)  # P(X = k - 1) under p0
    gamma = (level - binomial_tail(n, p0, k)) / at_edge if at_edge > 0 else 0.0
    edge1 = binomial_tail(n, p1, k - 1) - binomial_tail(n, p1, k)
    return binomial_tail(n, p1, k) + gamma * edge1


def best_detection_of(scenario: str, canary_requests: int) -> float:
    """``best_detection`` for one of the error-doubling scenarios, at 1% false rollbacks."""
    _, production, canary = SCENARIOS[scenario]
    return best_detection(
        canary_requests, production.error_rate, canary.error_rate, FALSE_ROLLBACKS_MAX
    )


def time_judges(statistical: dict[str, Any], per_side: int = 5000, repeat: int = 21) -> None:
    traffic = SimulatedTraffic(PRODUCTION, PRODUCTION, seed=7)
    canary = traffic.requests(per_side, 100.0)[0]
    baseline = traffic.requests(per_side, 0.0)[1]
    print(f"\none judge() call, {per_side:,} requests a side (median of {repeat}):")
    for name, judge in judges(statistical).items():
        took = []
        for _ in range(repeat):
            start = time.perf_counter()
            judge.judge(canary, baseline)
            took.append(time.perf_counter() - start)
        print(f"  {name:<12} {statistics.median(took) * 1000:7.2f} ms")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=1000, help="per scenario and mode")
    parser.add_argument("--requests-per-stage", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--alpha", type=float, help="StatisticalJudge(alpha=...)")
    parser.add_argument("--error-floor", type=float, help="effect_floor['error_rate']")
    parser.add_argument("--latency-floor", type=float, help="effect_floor['latency']")
    parser.add_argument("--latency-floor-ms", type=float, help="effect_floor['latency_ms']")
    parser.add_argument("--min-samples", type=int, help="StatisticalJudge(min_samples=...)")
    args = parser.parse_args(argv)
    for name, known in (("scenarios", SCENARIOS), ("modes", MODES)):
        chosen = getattr(args, name).split(",")
        unknown = [item for item in chosen if item not in known]
        if unknown:
            parser.error(f"--{name}: unknown {unknown}; choose from {','.join(known)}")
        setattr(args, name, chosen)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meter = CpuMeter()
    statistical: dict[str, Any] = {}
    if args.alpha is not None:
        statistical["alpha"] = args.alpha
    if args.min_samples is not None:
        statistical["min_samples"] = args.min_samples
    floors = {}
    if args.error_floor is not None:
        floors["error_rate"] = args.error_floor
    if args.latency_floor is not None:
        floors["latency"] = args.latency_floor
    if args.latency_floor_ms is not None:
        floors["latency_ms"] = args.latency_floor_ms
    if floors:
        statistical["effect_floor"] = floors
    rps = args.requests_per_stage
    print(f"judges: {ThresholdJudge()!r}\n        {StatisticalJudge(**statistical)!r}")
    print(
        f"{args.rollouts:,} seeded rollouts per scenario and mode, stages "
        f"{', '.join(f'{s:g}' for s in SEED_STAGES)}%, {rps} requests per stage, "
        f"{args.jobs} worker processes"
    )

    jobs, keys = [], []
    chunk = max(1, math.ceil(args.rollouts / (args.jobs * 4)))
    for mode in args.modes:
        for scenario in args.scenarios:
            for start in range(0, args.rollouts, chunk):
                seeds = range(start, min(start + chunk, args.rollouts))
                jobs.append(Job(scenario, MODES[mode][1], seeds, rps, statistical))
                keys.append((mode, scenario))
    results: dict[tuple[str, str], dict[str, list[float | None]]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for key, out in zip(keys, pool.map(run, jobs), strict=True):
            merged = results.setdefault(key, {name: [] for name in JUDGES})
            for name in JUDGES:
                merged[name].extend(out[name])

    rates: dict[tuple[str, str, str], float] = {}
    for mode in args.modes:
        label, per_pool = MODES[mode]
        canary_total = rps * len(SEED_STAGES) if per_pool else rps * sum(SEED_STAGES) / 100
        how = (
            f"{rps} to the canary and {rps} to the baseline each stage"
            if per_pool
            else f"{rps} a stage split by its percent"
        )
        print(f"\n{label}: {how}; the canary serves {canary_total:,.0f} requests by the end")
        header = f"{'scenario':<14}{'judge':<13}{'rolled back':>12}{'95% CI':>17}   rolled back at"
        print(header)
        print("-" * (len(header) + 30))
        for scenario in args.scenarios:
            for name in JUDGES:
                at = results[(mode, scenario)][name]
                back = [a for a in at if a is not None]
                rate = len(back) / len(at)
                rates[(mode, scenario, name)] = rate
                low, high = wilson(len(back), len(at))
                stages = Counter(back)
                where = ", ".join(f"{s:g}%: {stages[s]}" for s in SEED_STAGES if stages[s])
                print(
                    f"{SCENARIOS[scenario][0]:<14}{name:<13}{rate:>11.1%}"
                    f"   [{low:6.1%}, {high:6.1%}]   {where or '-'}"
                )
        for scenario in ERROR_DOUBLINGS:
            if scenario in args.scenarios:
                bound = best_detection_of(scenario, round(canary_total))
                print(
                    f"{SCENARIOS[scenario][0]}: no judge can catch more than {bound:.1%} with "
                    f"{canary_total:,.0f} canary requests at <= 1% false rollbacks "
                    "(Neyman-Pearson, both rates known)"
                )

    failed = False
    if "pool" in args.modes:
        print("\ntargets (statistical judge, per pool):")
        gates = [
            ("equal", "false rollbacks, 0.5%", "<=", FALSE_ROLLBACKS_MAX),
            ("equal-5", "false rollbacks, 5%", "<=", FALSE_ROLLBACKS_MAX),
            ("errors", "detection, errors 5->10%", ">=", DETECTION_MIN),
            ("latency", "detection, latency +50%", ">=", DETECTION_MIN),
        ]
        for scenario, what, op, target in gates:
            if scenario not in args.scenarios:
                continue
            rate = rates[("pool", scenario, "statistical")]
            ok = rate <= target if op == "<=" else rate >= target
            failed |= not ok
            threshold = rates[("pool", scenario, "threshold")]
            note = f"threshold judge: {threshold:.1%}"
            if scenario in ERROR_DOUBLINGS:
                note += f"; any judge: <= {best_detection_of(scenario, rps * len(SEED_STAGES)):.1%}"
            print(
                f"  {what + ' ' + op + f' {target:.0%}':<34} {rate:6.1%} "
                f"{'PASS' if ok else 'FAIL'}   ({note})"
            )

    time_judges(statistical)
    print(meter.summary())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
