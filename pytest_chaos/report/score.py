"""The resilience score and the gates that turn it into an exit code.

The score is LitmusChaos's: the sum of each test's weight times its success ratio (the
share of its hypothesis checks that held), over the sum of the weights, as a percentage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

from pytest_chaos.report.results import DEVIATIONS, VERDICTS, ChaosResult


@final
@dataclass(frozen=True)
class Score:
    """The session's score over its scored chaos tests (None when there were none)."""

    value: float | None
    results: tuple[ChaosResult, ...]

    @classmethod
    def of(cls, results: Sequence[ChaosResult]) -> Score:
        scored = [result for result in results if result.scored]
        weights = sum(result.weight for result in scored)
        if not weights:
            return cls(None, tuple(results))
        total = sum(result.weight * result.success_ratio for result in scored)
        return cls(round(100 * total / weights, 1), tuple(results))

    def totals(self) -> dict[str, int]:
        counts = Counter(result.verdict for result in self.results)
        return {"tests": len(self.results), **{verdict: counts[verdict] for verdict in VERDICTS}}

    def deviated(self) -> list[ChaosResult]:
        return [result for result in self.results if result.verdict in DEVIATIONS]

    def losses(self) -> list[tuple[ChaosResult, float]]:
        """What pulled the score down: each test that lost points, with the points it lost
        (of 100), most first."""
        weights = sum(result.weight for result in self.results if result.scored)
        lost = [
            (result, round(100 * result.weight * (1 - result.success_ratio) / weights, 1))
            for result in self.results
            if result.scored and result.success_ratio < 1
        ]
        return sorted(lost, key=lambda pair: (-pair[1], pair[0].nodeid))


@final
@dataclass(frozen=True)
class Gates:
    """The session's thresholds: ``min_score`` (0-100) and ``max_deviated`` experiments.
    With either set, deviated and halted experiments within them do not fail the run."""

    min_score: float | None = None
    max_deviated: int | None = None

    @property
    def active(self) -> bool:
        return self.min_score is not None or self.max_deviated is not None

    def failures(self, score: Score) -> list[str]:
        """Why the gates fail, one line each (with what pulled the score down); [] if they
        hold or none is set."""
        problems = []
        if self.min_score is not None:
            if score.value is None:
                problems.append(
                    f"no chaos test ran, so there is no score to hold to "
                    f"--chaos-min-score {self.min_score:g}"
                )
            elif score.value < self.min_score:
                pulled = "; ".join(
                    f"{result.nodeid} {result.verdict} "
                    f"({result.checks_passed}/{result.checks_total} checks, "
                    f"weight {result.weight}, -{points:g})"
                    for result, points in score.losses()
                )
                problems.append(
                    f"resilience score {score.value:g} < --chaos-min-score "
                    f"{self.min_score:g}; pulled down by: {pulled}"
                )
        deviated = score.deviated()
        if self.max_deviated is not None and len(deviated) > self.max_deviated:
            names = ", ".join(result.nodeid for result in deviated)
            problems.append(
                f"{len(deviated)} experiment(s) deviated > --chaos-max-deviated "
                f"{self.max_deviated}: {names}"
            )
        return problems
