"""How real canary rollouts end (issue 17): how many healthy canaries are rolled back, and
how many 50% slower canaries and canaries with errors doubled from 5% to 10% are caught,
with the default judge (``StatisticalJudge()``) and the default rollout (stages 1, 5, 10,
25, 50, 100%, 200 requests a stage, windows and warm-up as ``CanaryRollout`` does them).

Every rollout is real: two fresh processes of ``tests/canary/app.py`` (the stable version
and the canary), a fresh ``Router`` between them, and a steady load of ``--rps`` requests a
second through the router (``Load.http``), as ``tests/canary/test_rollout.py`` runs them.
The versions answer in 20-24 ms (``--delay-ms 20 --jitter-ms 4``):

- ``healthy``: the canary is the same (its own jitter seed);
- ``latency``: the canary answers in 30-36 ms: +50%;
- ``errors``: both fail some requests with a 500, the stable version 5% and the canary 10%;
- ``healthy-5``: both fail 5% (not gated: the error judge's false rollbacks at 5%).

The scenarios take turns, so that whatever the machine does meanwhile falls on all of them.

Reference, measured on the same requests: the previous rollout's judgement, which compared
everything each pool served since the rollout began (no windows, no warm-up), judged at the
end of each stage with the same judge and after a 100% stage of as many requests; a
rollout counts as rolled back by it at its first failing judgement.

Targets (exit code 1 when one is missed): at most 1 healthy rollout in 100 rolled back
(scaled: at most 1% of them, and 1 of fewer than 100), at least 95% of the latency and
errors rollouts rolled back. ``--json`` keeps every rollout's result and timeline.

    python3 benchmarks/canary_rollouts.py [--rollouts healthy=100,latency=40,errors=40]
        [--rps 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_chaos import probes
from pytest_chaos.canary.judge import Observation, StatisticalJudge
from pytest_chaos.canary.rollout import CanaryRollout, RolloutResult
from pytest_chaos.canary.router import Router
from pytest_chaos.core.faultlog import FaultLog
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.services import ServiceManager
from pytest_chaos.steady.load import Load

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import CpuMeter
from canary_judge import wilson

APP = Path(__file__).resolve().parent.parent / "tests" / "canary" / "app.py"
SAME = ("--delay-ms", "20", "--jitter-ms", "4")
#: name: (what it is, stable's options, canary's options, rolled back is...)
SCENARIOS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "healthy": ("healthy canary", SAME, SAME, "false"),
    "latency": ("latency +50%", SAME, ("--delay-ms", "30", "--jitter-ms", "6"), "caught"),
    "errors": (
        "errors 5->10%",
        (*SAME, "--error-rate", "0.05"),
        (*SAME, "--error-rate", "0.10"),
        "caught",
    ),
    "healthy-5": (
        "healthy, 5% errors",
        (*SAME, "--error-rate", "0.05"),
        (*SAME, "--error-rate", "0.05"),
        "false",
    ),
}
FALSE_PER_100 = 1
DETECTION_MIN = 0.95


@dataclass
class Outcome:
    """One rollout: how it ended, where, why, how long it took, and the reference's call."""

    scenario: str
    seed: int
    result: RolloutResult
    took_s: float
    reference_back: bool
    extensions: int = field(init=False)

    def __post_init__(self) -> None:
        self.extensions = sum(1 for e in self.result.timeline if e.get("action") == "extend")

    @property
    def where(self) -> str:
        last = self.result.timeline[-1] if self.result.timeline else {}
        return f"{last.get('percent', '?'):g}%" if "percent" in last else "?"

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "took_s": round(self.took_s, 2),
            "reference_rolled_back": self.reference_back,
            "result": self.result.to_json(),
        }


@contextmanager
def versions(scenario: str, seed: int, folder: Path) -> Iterator[tuple[str, str]]:
    """The stable version and the canary of ``scenario``, each a process of its own started
    and checked ready as the tests' ``service`` fixture does; yields their addresses and
    stops them on the way out."""
    _, stable_options, canary_options, _ = SCENARIOS[scenario]
    manager = ServiceManager(
        log=FaultLog(),
        seeds=TestSeeds(seed, f"canary_rollouts::{scenario}"),
        workdir=lambda: Path(tempfile.mkdtemp(dir=folder)),
    )
    try:
        started = [
            manager.process(
                name,
                [sys.executable, str(APP), "--port", "{port}", "--version", name, *options],
                ready=probes.http("/health"),
            )
            for name, options in (
                ("stable", (*stable_options, "--seed", str(2 * seed + 1))),
                ("canary", (*canary_options, "--seed", str(2 * seed + 2))),
            )
        ]
        yield started[0].address, started[1].address
    finally:
        manager.close()


def rollout(scenario: str, seed: int, rps: float, folder: Path) -> Outcome:
    """One real rollout of ``scenario``, and the reference's judgement of its requests."""
    with versions(scenario, seed, folder) as (stable, canary):
        router = Router({"stable": [stable], "canary": [canary]}, seed=seed).start()
        try:
            load = Load.http(router.url + "/", rps=rps, duration_s=600, timeout=2)
            with load.start():
                release = CanaryRollout(router)
                started = time.monotonic()
                result = release.run()
                took = time.monotonic() - started
                if result.promoted:  # the previous rollout judged a 100% stage too
                    promoted_at = time.monotonic()
                    while len(router.observations(since=promoted_at)) < (
                        release.stage_requests or 0
                    ):
                        time.sleep(0.05)
            served = router.observations(since=started)
        finally:
            router.close()
    return Outcome(scenario, seed, result, took, reference(result, served, started))


def reference(result: RolloutResult, served: list[Any], started: float) -> bool:
    """Whether the previous rollout's judgement — everything each pool served since the
    start, judged at the end of each stage and after the 100% stage — rolls back."""
    judge = StatisticalJudge()
    moments = [
        started + entry["at_s"]
        for entry in result.timeline
        if "verdict" in entry and entry["extensions"] == 0 and entry["action"] != "hold"
    ]
    if result.promoted:
        moments.append(max(item.at for item in served) + 1.0)
    for moment in moments:
        sides: dict[str, list[Observation]] = {"canary": [], "stable": []}
        for item in served:
            if item.at + item.latency_ms / 1000.0 <= moment:
                sides[item.pool].append(Observation(item.latency_ms, item.ok, item.at))
        if judge.judge(sides["canary"], sides["stable"]).outcome == "fail":
            return True
    return False


def schedule(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Every scenario's rollouts, taking turns in proportion to their numbers."""
    turns = [((i + 0.5) / count, name, i) for name, count in counts.items() for i in range(count)]
    return [(name, i) for _, name, i in sorted(turns)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rollouts",
        default="healthy=100,latency=40,errors=40",
        help="scenario=count,... from " + ",".join(SCENARIOS),
    )
    parser.add_argument("--rps", type=float, default=200.0)
    parser.add_argument("--json", type=Path, help="write every rollout here")
    args = parser.parse_args(argv)
    counts = {}
    for item in args.rollouts.split(","):
        name, _, count = item.partition("=")
        if name not in SCENARIOS or not count.isdigit() or int(count) < 1:
            parser.error(f"--rollouts: {item!r}: use scenario=count, scenarios {list(SCENARIOS)}")
        counts[name] = int(count)
    args.counts = counts
    return args


def report(outcomes: list[Outcome], counts: dict[str, int]) -> bool:
    """Print the table and the targets; True when every target holds."""
    header = (
        f"{'scenario':<20}{'rollouts':>9}{'rolled back':>13}{'95% CI':>18}"
        f"{'reference':>11}{'median s':>10}{'extended':>10}   rolled back at"
    )
    print(header)
    print("-" * (len(header) + 20))
    ok = True
    targets = []
    for name in counts:
        done = [o for o in outcomes if o.scenario == name]
        back = [o for o in done if o.result.rolled_back]
        low, high = wilson(len(back), len(done))
        where = Counter(o.where for o in back)
        reference_back = sum(o.reference_back for o in done)
        extended = sum(1 for o in done if o.extensions)
        print(
            f"{SCENARIOS[name][0]:<20}{len(done):>9}{len(back):>7} {len(back) / len(done):>5.1%}"
            f"   [{low:6.1%}, {high:6.1%}]{reference_back:>11}"
            f"{statistics.median(o.took_s for o in done):>10.1f}{extended:>10}   "
            + (", ".join(f"{w}: {n}" for w, n in sorted(where.items())) or "-")
        )
        kind = SCENARIOS[name][3]
        if name == "healthy":
            allowed = max(FALSE_PER_100, math.floor(len(done) * FALSE_PER_100 / 100))
            hit = len(back) <= allowed
            targets.append(
                f"  healthy rolled back <= {allowed} of {len(done)}: {len(back)} "
                f"{'PASS' if hit else 'FAIL'}"
            )
            ok &= hit
        elif kind == "caught":
            rate = len(back) / len(done)
            hit = rate >= DETECTION_MIN
            targets.append(
                f"  {SCENARIOS[name][0]} caught >= {DETECTION_MIN:.0%}: {rate:.1%} "
                f"{'PASS' if hit else 'FAIL'}"
            )
            ok &= hit
        for o in back if kind == "false" else [o for o in done if not o.result.rolled_back]:
            print(
                f"    {'rolled back' if kind == 'false' else 'missed'} (seed {o.seed}): "
                f"{o.result.reason[:220]}"
            )
    print("\ntargets (default judge, default stages):")
    print("\n".join(targets))
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meter = CpuMeter()
    print(f"judge: {StatisticalJudge()!r}")
    defaults = CanaryRollout(object())  # type: ignore[arg-type]
    print(
        f"rollout: stages {', '.join(f'{s:g}' for s in defaults.stages)}%, "
        f"{defaults.stage_requests} requests a stage, warm-up {defaults.warmup_requests} canary "
        f"requests a stage, up to {defaults.max_extensions} extensions of the last stage judged"
    )
    print(
        f"load {args.rps:g} requests/s through the router; "
        f"{', '.join(f'{n} {name}' for name, n in args.counts.items())}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    outcomes = []
    folder = Path(tempfile.mkdtemp(prefix="canary_rollouts-"))
    for scenario, seed in schedule(args.counts):
        outcome = rollout(scenario, seed, args.rps, folder)
        outcomes.append(outcome)
        print(
            f"  {len(outcomes):>4} {scenario:<10} seed {seed:<4} {outcome.result.outcome:<12} "
            f"at {outcome.where:<5} {outcome.took_s:5.1f} s  load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if outcome.result.rolled_back == (SCENARIOS[scenario][3] == "false"):
            print(f"       {outcome.result.reason[:300]}", flush=True)
    print()
    passed = report(outcomes, args.counts)
    if args.json is not None:
        args.json.write_text(json.dumps([o.to_json() for o in outcomes], indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}; {meter.summary()}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
