"""Exploration: how many runs pruning makes against exhaustive single and pairwise
exploration, what each finds, and the wall time with and without pytest-xdist, on the
corpus (examples/explore-corpus, checked against its answer key) and on the shop
(examples/shop/tests/test_shop_explore.py), each configuration one real pytest session.

    python3 benchmarks/explore.py [--json FILE] [--only corpus|shop] [--skip-exhaustive-pairs]

Exits 1 when the pruned exploration of the corpus misses a planted bug or blames a handled
dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "explore-corpus"
sys.path.insert(0, str(CORPUS))
from corpus.manifest import BUGS, check  # noqa: E402

SUBJECTS = {
    "corpus": (
        CORPUS,
        ["tests", "--chaos-explore-timeout", "3", "--chaos-explore-latency", "600"],
    ),
    "shop": (ROOT / "examples" / "shop", ["tests/test_shop_explore.py"]),
}
CONFIGURATIONS = {
    "pruned": ["--chaos-explore-depth", "2"],
    "pruned, -n 2": ["--chaos-explore-depth", "2", "-n", "2"],
    "exhaustive single": ["--chaos-explore-depth", "1", "--chaos-explore-exhaustive"],
    "exhaustive pairwise": ["--chaos-explore-depth", "2", "--chaos-explore-exhaustive"],
}


@dataclass
class Measure:
    subject: str
    configuration: str
    runs: int
    fault_runs: int
    wall_s: float
    outcomes: dict[str, int]
    problems: list[str] = field(default_factory=list)
    bugs_found: list[int] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)


def explore(subject: str, configuration: str) -> Measure:
    folder, args = SUBJECTS[subject]
    with tempfile.TemporaryDirectory() as report:
        command = [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"),
            *("--chaos-explore", "--chaos-seed", "1", "--chaos-report", report),
            *args,
            *CONFIGURATIONS[configuration],
        ]
        started = time.monotonic()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=_env())
        wall = time.monotonic() - started
        try:
            summary = json.loads((Path(report) / "summary.json").read_text())
        except FileNotFoundError:
            raise SystemExit(
                f"{subject}, {configuration}: no summary\n{done.stdout[-3000:]}"
            ) from None
    explore = summary["explore"]
    runs = [run for test in explore["tests"] for run in test["runs"]]
    baselines = sum(1 for test in explore["tests"] if test["baseline"] is not None)
    made = [run for run in runs if run["outcome"] != "not run"]
    problems = sorted(
        {
            f"{run['test'].rpartition('::')[2]}: {_services(run)}"
            for run in runs
            if run["outcome"] in ("broke", "hung")
        }
    )
    measure = Measure(
        subject,
        configuration,
        runs=baselines + len(made),
        fault_runs=len(made),
        wall_s=round(wall, 1),
        outcomes={k: v for k, v in explore["counts"].items() if v},
        problems=problems,
    )
    if subject == "corpus":
        verdict = check(runs)
        measure.bugs_found = [bug.number for bug in verdict.found]
        measure.unexplained = verdict.unexplained
    return measure


def _services(run: dict[str, Any]) -> str:
    names = []
    for fault in run["faults"]:
        name = fault["dependency"]
        names.append(name.partition(" ")[2].split("/")[0] if fault["kind"] == "http" else name)
    return " + ".join(sorted(set(names)))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_CHAOS_EXPLORE")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def report(measures: list[Measure]) -> list[str]:
    lines = []
    for subject in dict.fromkeys(m.subject for m in measures):
        mine = {m.configuration: m for m in measures if m.subject == subject}
        lines.append(f"{subject}:")
        head = f"  {'configuration':22} {'runs':>5} {'fault runs':>10} {'wall s':>7}  outcomes"
        lines.append(head)
        for name, m in mine.items():
            outcomes = ", ".join(f"{v} {k}" for k, v in m.outcomes.items())
            lines.append(f"  {name:22} {m.runs:5d} {m.fault_runs:10d} {m.wall_s:7.1f}  {outcomes}")
        pruned = mine.get("pruned")
        for name in ("exhaustive single", "exhaustive pairwise"):
            if pruned and name in mine:
                lines.append(
                    f"  runs, pruned / {name}: {pruned.runs / mine[name].runs:.2f}x"
                    f" ({pruned.runs} of {mine[name].runs})"
                )
        if pruned and "pruned, -n 2" in mine:
            lines.append(
                f"  wall time, -n 2 / serial: {mine['pruned, -n 2'].wall_s / pruned.wall_s:.2f}x"
            )
        for name, m in mine.items():
            if subject == "corpus":
                lines.append(
                    f"  {name}: bugs found {len(m.bugs_found)}/{len(BUGS)} {m.bugs_found}, "
                    f"runs blaming a handled dependency: {len(m.unexplained)}"
                )
            else:
                lines.append(f"  {name}: broke or hung: {'; '.join(m.problems) or 'none'}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the measures here")
    parser.add_argument("--only", choices=sorted(SUBJECTS), help="one subject only")
    parser.add_argument("--skip-exhaustive-pairs", action="store_true")
    args = parser.parse_args()
    subjects = [args.only] if args.only else list(SUBJECTS)
    measures = []
    for subject in subjects:
        for configuration in CONFIGURATIONS:
            if args.skip_exhaustive_pairs and configuration == "exhaustive pairwise":
                continue
            print(f"{subject}: {configuration}...", file=sys.stderr, flush=True)
            measures.append(explore(subject, configuration))
    for line in report(measures):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in measures], indent=2) + "\n")
    corpus = next(
        (m for m in measures if (m.subject, m.configuration) == ("corpus", "pruned")), None
    )
    if corpus is not None and (len(corpus.bugs_found) != len(BUGS) or corpus.unexplained):
        print("the pruned exploration of the corpus did not find exactly the planted bugs")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
