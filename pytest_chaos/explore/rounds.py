"""Exploring: the baseline round, then a round per combination size, each planned from
the rounds before it and made by a child session, within the budget.

Each round is one pytest session of its own (where pytest-xdist spreads the runs, if it
was asked for): its items are the cells, named by their ids, so the plan reaches every
xdist worker as the command line, and each cell can be replayed by naming it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import final

from pytest_chaos.explore.cells import Cell
from pytest_chaos.explore.outcome import FAILED_BASELINE, GOOD, NOT_RUN, UNTOUCHED, CellResult
from pytest_chaos.explore.planner import (
    BUDGET,
    Plan,
    Planned,
    TestHistory,
    plan_combinations,
    plan_singles,
)
from pytest_chaos.explore.settings import ExploreSettings

#: Runs one round: the planned runs in order; their results (in any order).
RunRound = Callable[[Sequence[Planned], float | None], list[CellResult]]


@final
@dataclass
class RoundRecord:
    """What a round planned and made: ``size`` faults a run (0: the baselines)."""

    size: int
    planned: int
    exhaustive: int
    pruned: Counter[str]
    ran: int = 0


@final
@dataclass
class Exploration:
    """Every run of the session, the tests explored (in the session's order), each round's
    plan, and the tests that could not be explored (with why)."""

    results: list[CellResult] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    rounds: list[RoundRecord] = field(default_factory=list)
    unexplored: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None

    @property
    def fault_runs(self) -> list[CellResult]:
        return [result for result in self.results if not result.parsed.baseline]


def explore(
    tests: Sequence[str],
    settings: ExploreSettings,
    *,
    seed: int,
    run_round: RunRound,
    announce: Callable[[str], None],
    should_stop: Callable[[], str | None],
) -> Exploration:
    """Explore ``tests`` (node ids). ``run_round`` makes a round's runs (with the deadline
    of a time budget, if any); ``announce`` tells the user about each round;
    ``should_stop`` says why to stop early (-x, an interruption), or None."""
    exploration = Exploration(tests=list(tests))
    if not tests:
        return exploration
    started = time.monotonic()
    deadline = None if settings.budget.seconds is None else time.time() + settings.budget.seconds
    baselines = [Planned(test, Cell()) for test in tests]
    announce(f"baseline: {len(baselines)} test(s) run once without faults")
    results = run_round(baselines, deadline)
    exploration.results.extend(results)
    exploration.rounds.append(
        RoundRecord(0, len(baselines), len(baselines), Counter(), len(results))
    )
    histories = _histories(results, exploration)
    for size in range(1, settings.depth + 1):
        stop = should_stop() or _out_of_time(deadline)
        plan = (
            plan_singles(histories, seed=seed, exhaustive=settings.exhaustive)
            if size == 1
            else plan_combinations(histories, size, seed=seed, exhaustive=settings.exhaustive)
        )
        remaining = _remaining_runs(settings, exploration)
        cut = plan.cut(0 if stop else remaining)
        record = RoundRecord(size, len(cut.runs), plan.exhaustive, cut.pruned)
        exploration.rounds.append(record)
        if stop:
            exploration.stopped = stop
            break
        if not cut.runs:
            continue
        announce(_announcement(size, cut, plan))
        ran = run_round(cut.runs, deadline)
        record.ran = sum(1 for result in ran if result.outcome != NOT_RUN)
        exploration.results.extend(ran)
        by_test = {history.test: history for history in histories}
        for result in ran:
            by_test[result.test].add(result)
    announce(f"explored in {time.monotonic() - started:.1f} s")
    return exploration


def _histories(baselines: list[CellResult], exploration: Exploration) -> list[TestHistory]:
    histories = []
    for result in baselines:
        if result.outcome == FAILED_BASELINE:
            exploration.unexplored[result.test] = "its run without faults failed"
        elif result.outcome == UNTOUCHED:
            exploration.unexplored[result.test] = result.message or "it touched nothing"
        elif result.outcome == NOT_RUN:
            exploration.unexplored[result.test] = result.message or "its baseline did not run"
        elif result.outcome in GOOD:
            histories.append(TestHistory(result.test, result))
    return histories


def _remaining_runs(settings: ExploreSettings, exploration: Exploration) -> int | None:
    if settings.budget.runs is None:
        return None
    return max(0, settings.budget.runs - len(exploration.fault_runs))


def _out_of_time(deadline: float | None) -> str | None:
    if deadline is not None and time.time() >= deadline:
        return "the time budget is spent"
    return None


def _announcement(size: int, cut: Plan, plan: Plan) -> str:
    what = "single faults" if size == 1 else f"combinations of {size} faults"
    pruned = sum(count for reason, count in cut.pruned.items() if reason != BUDGET)
    text = f"{what}: {len(cut.runs)} run(s) of {plan.exhaustive} possible ({pruned} pruned"
    if cut.pruned[BUDGET]:
        text += f", {cut.pruned[BUDGET]} over the budget"
    return text + ")"
