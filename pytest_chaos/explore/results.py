"""What an exploration found: the matrix of test x dependency x fault, the held share
(runs that held or did what was declared, of the runs that finished), the gate, and their
forms for the terminal and for ``summary.json``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, final

from pytest_chaos.explore.catalogue import CATALOGUE, describe
from pytest_chaos.explore.outcome import (
    BROKE,
    ERROR,
    EXPECTED,
    GOOD,
    HELD,
    HUNG,
    NOT_RUN,
    OUTCOMES,
    CellResult,
)
from pytest_chaos.explore.planner import REASONS
from pytest_chaos.explore.rounds import Exploration

FORMAT = 1
#: How a run's outcome reads in the terminal's matrix.
SHORT = {
    HELD: "held",
    EXPECTED: "expected",
    BROKE: "BROKE",
    HUNG: "HUNG",
    ERROR: "error",
    NOT_RUN: "-",
}
#: Outcomes that end a run without a verdict on the system (they count in no share).
_UNJUDGED = (NOT_RUN, ERROR)


def held_share(runs: Iterable[CellResult]) -> tuple[int, int]:
    """Runs that held or did what was expected, and runs that reached a verdict."""
    judged = [run for run in runs if run.outcome not in _UNJUDGED]
    return sum(1 for run in judged if run.outcome in GOOD), len(judged)


@final
@dataclass
class Findings:
    """An exploration, read: its fault runs by test, counts, the held share, the gate."""

    exploration: Exploration
    min_held: float | None = None

    @property
    def runs(self) -> list[CellResult]:
        return self.exploration.fault_runs

    def tests(self) -> list[str]:
        """The explored tests in the session's order (those that ran, when it is not known)."""
        ran = dict.fromkeys(result.test for result in self.exploration.results)
        return [test for test in self.exploration.tests if test in ran] + [
            test for test in ran if test not in self.exploration.tests
        ]

    def runs_of(self, test: str) -> list[CellResult]:
        return [run for run in self.runs if run.test == test]

    def baseline_of(self, test: str) -> CellResult | None:
        for result in self.exploration.results:
            if result.test == test and result.parsed.baseline:
                return result
        return None

    def counts(self) -> Counter[str]:
        return Counter(run.outcome for run in self.runs)

    @property
    def share(self) -> float | None:
        """The held share as a percentage, or None when no fault run reached a verdict."""
        good, judged = held_share(self.runs)
        return None if not judged else round(100 * good / judged, 1)

    def problems(self) -> list[CellResult]:
        return [run for run in self.runs if run.outcome in (BROKE, HUNG)]

    def gate_failure(self) -> str | None:
        """Why ``--chaos-explore-min`` fails, or None (it holds, or is not set)."""
        if self.min_held is None:
            return None
        share = self.share
        if share is None:
            return (
                f"no explored run reached a verdict, so there is no held share to hold to "
                f"--chaos-explore-min {self.min_held:g}"
            )
        if share >= self.min_held:
            return None
        worst = ", ".join(run.nodeid for run in self.problems()[:5])
        more = len(self.problems()) - 5
        return (
            f"explored runs held {share:g}% < --chaos-explore-min {self.min_held:g}; "
            f"broke or hung: {worst}" + (f" and {more} more" if more > 0 else "")
        )

    # -- the terminal ----------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The matrix, then every broken or hung run with its command."""
        lines = [self._headline()]
        for test in self.tests():
            lines.extend(self._test_lines(test))
        problems = self.problems()
        if problems:
            lines.append("broken and hung runs, each with the command that replays it:")
        for run in problems:
            lines.append(f"  {SHORT[run.outcome]:6} {run.nodeid}")
            lines.extend(f"         {line}" for line in (run.message or "").splitlines()[:6])
            lines.append(f"         {run.replay}")
        failure = self.gate_failure()
        if failure is not None:
            lines.append(f"gate failed: {failure}")
        return lines

    def _headline(self) -> str:
        counts = self.counts()
        parts = [f"{counts[outcome]} {outcome}" for outcome in OUTCOMES if counts[outcome]]
        share = self.share
        text = f"explored {len(self.tests())} test(s) in {len(self.runs)} fault run(s)"
        if parts:
            text += ": " + ", ".join(parts)
        if share is not None:
            text += f"; held share {share:g}%"
        if self.min_held is not None:
            text += f" (gate {self.min_held:g}%: " + (
                "FAILED)" if self.gate_failure() else "passed)"
            )
        return text

    def _test_lines(self, test: str) -> list[str]:
        lines = [test]
        unexplored = self.exploration.unexplored.get(test)
        if unexplored is not None:
            return [*lines, f"  not explored: {unexplored}"]
        order = {kind.id: number for number, kind in enumerate(CATALOGUE)}
        singles: dict[str, list[tuple[int, str]]] = {}
        combined: list[tuple[str, str]] = []
        for run in self.runs_of(test):
            cell = run.parsed
            if len(cell.faults) == 1:
                (fault,) = cell.faults
                singles.setdefault(str(fault.dependency), []).append(
                    (order.get(fault.fault, len(order)), f"{fault.fault} {SHORT[run.outcome]}")
                )
            else:
                combined.append((" + ".join(f.id for f in cell.faults), SHORT[run.outcome]))
        rows = [
            (name, [text for _, text in sorted(cells)]) for name, cells in sorted(singles.items())
        ]
        rows += [(name, [outcome]) for name, outcome in sorted(combined)]
        width = max((len(name) for name, _ in rows), default=0)
        for name, cells in rows:
            lines.append(f"  {name.ljust(width)}  " + "  ".join(cells))
        return lines

    # -- summary.json ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        good, judged = held_share(self.runs)
        failure = self.gate_failure()
        return {
            "format": FORMAT,
            "held_share": self.share,
            "held": good,
            "judged": judged,
            "counts": {outcome: self.counts()[outcome] for outcome in OUTCOMES},
            "gate": {
                "min_held": self.min_held,
                "passed": failure is None,
                "failure": failure,
            },
            "stopped": self.exploration.stopped,
            "rounds": [
                {
                    "faults": record.size,
                    "planned": record.planned,
                    "ran": record.ran,
                    "exhaustive": record.exhaustive,
                    "pruned": {
                        reason: record.pruned[reason] for reason in REASONS if record.pruned[reason]
                    },
                }
                for record in self.exploration.rounds
            ],
            "tests": [self._test_json(test) for test in self.tests()],
        }

    def _test_json(self, test: str) -> dict[str, Any]:
        baseline = self.baseline_of(test)
        good, judged = held_share(self.runs_of(test))
        usages = baseline.recording.usages if baseline is not None else ()
        return {
            "test": test,
            "baseline": None if baseline is None else baseline.outcome,
            "unexplored": self.exploration.unexplored.get(test),
            "held": good,
            "judged": judged,
            "dependencies": [usage.to_json() for usage in usages],
            "runs": [_run_json(run) for run in self.runs_of(test)],
        }


def _run_json(run: CellResult) -> dict[str, Any]:
    cell = run.parsed
    data = run.to_json()
    data["faults"] = [
        {
            "kind": fault.dependency.kind,
            "dependency": fault.dependency.name,
            "fault": fault.fault,
            "does": describe(fault.dependency.kind, fault.fault),
        }
        for fault in cell.faults
    ]
    data["touched"] = sorted(str(d) for d in run.recording.touched())
    del data["recording"]
    return data
