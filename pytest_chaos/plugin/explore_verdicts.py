"""What an exploration tells the rest of the session: one result per explored test for the
resilience score (its held share), and the tests that failed outside the explorer's gate."""

from __future__ import annotations

import pytest

from pytest_chaos.explore.outcome import CellResult
from pytest_chaos.explore.results import Findings, held_share
from pytest_chaos.plugin import markers
from pytest_chaos.plugin.explore_state import state
from pytest_chaos.plugin.markers import ChaosMarker
from pytest_chaos.plugin.session import chaos_session
from pytest_chaos.report.results import ChaosResult


def failed_nodeids(config: pytest.Config) -> set[str]:
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    stats = {} if terminal is None else terminal.stats
    return {
        report.nodeid
        for key in ("failed", "error")
        for report in stats.get(key, [])
        if isinstance(report, pytest.TestReport)
    }


def verdicts(config: pytest.Config, findings: Findings) -> list[ChaosResult]:
    """One result per explored test for the resilience score: its held share as its
    success ratio, its marker's weight (1 for a test without one)."""
    seed = chaos_session(config).settings.seed
    results = []
    for test in findings.tests():
        runs = findings.runs_of(test)
        good, judged = held_share(runs)
        if not judged:
            continue
        declared = _marker_of(config, test)
        problems = [run for run in runs if run in findings.problems()]
        results.append(
            ChaosResult(
                nodeid=test,
                verdict="failed" if problems else "passed",
                weight=1 if declared is None else declared.weight,
                seed=seed,
                title=f"explored: {good} of {judged} fault runs held or did as expected",
                tags=[] if declared is None else list(declared.tags),
                faults=_worst(problems),
                checks_passed=good,
                checks_total=judged,
                success_ratio=round(good / judged, 4),
                duration_s=round(sum(run.duration_s for run in runs), 3),
                message=None if not problems else f"{len(problems)} of {judged} runs broke or hung",
            )
        )
    return results


def _worst(problems: list[CellResult], shown: int = 3) -> list[str]:
    """The first broken or hung runs, for the score's table (the matrix has them all)."""
    lines = [f"{run.parsed.describe()}: {run.outcome}" for run in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"and {len(problems) - shown} more broken or hung run(s)")
    return lines


def _marker_of(config: pytest.Config, test: str) -> ChaosMarker | None:
    """The chaos marker of the explored test ``test`` (when this session collected it)."""
    item = state(config).items.get(test)
    return None if item is None else markers.of(item)
