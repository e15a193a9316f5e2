"""Judging one run from what pytest saw of it: how it ended, why, and where it hung."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

from pytest_chaos.explore.cells import Cell
from pytest_chaos.explore.expectations import Declaration
from pytest_chaos.explore.hang import Hung
from pytest_chaos.explore.outcome import (
    BROKE,
    ERROR,
    EXPECTED,
    FAILED_BASELINE,
    HELD,
    HUNG,
    NOT_RUN,
    UNTOUCHED,
    CellResult,
)
from pytest_chaos.explore.recording import Recording
from pytest_chaos.explore.run import CellRun


@final
@dataclass(frozen=True)
class Facts:
    """What pytest saw of a run: which phase decided it (``setup`` when the body never
    ran), whether it passed or was skipped, the exception and its text, and the
    pytest-xdist worker that made it (None without xdist)."""

    test: str
    nodeid: str
    phase: str
    passed: bool
    skipped: bool
    error: BaseException | None
    failure: str | None
    duration_s: float
    replay: str
    worker: str | None = None


def result_of(
    cell: Cell,
    run: CellRun | None,
    facts: Facts,
    declaration: Declaration,
    fixture: Callable[[str], Any],
) -> CellResult:
    """The run's :class:`CellResult`: ``fixture`` fetches one of the test's fixtures by
    name for an expectation's ``check``."""
    outcome, message, where, expectation = _verdict(cell, run, facts, declaration, fixture)
    return CellResult(
        test=facts.test,
        cell=cell.id,
        nodeid=facts.nodeid,
        outcome=outcome,
        duration_s=round(facts.duration_s, 3),
        message=message,
        where=where,
        expectation=expectation,
        replay=facts.replay,
        worker=facts.worker,
        recording=run.recording() if run is not None and facts.phase == "call" else Recording(),
    )


def _verdict(
    cell: Cell,
    run: CellRun | None,
    facts: Facts,
    declaration: Declaration,
    fixture: Callable[[str], Any],
) -> tuple[str, str | None, str | None, str | None]:
    """(outcome, message, where it hung, the expectation that made it legitimate)."""
    if facts.skipped:
        return NOT_RUN, facts.failure, None, None
    if facts.phase != "call" or run is None:
        outcome = FAILED_BASELINE if cell.baseline else ERROR
        return outcome, f"set-up failed: {facts.failure}", None, None
    if cell.baseline:
        if not facts.passed:
            return FAILED_BASELINE, facts.failure, None, None
        if not run.recording().touched():
            return UNTOUCHED, UNTOUCHED_REASON, None, None
        return HELD, None, None, None
    if run.unapplied:
        missing = "; ".join(f"{fault.dependency} was never made" for fault in run.unapplied)
        return NOT_RUN, f"not run: {missing}", None, None
    if isinstance(facts.error, Hung):
        return HUNG, str(facts.error), facts.error.where, None
    if facts.passed:
        if run.consulted:
            return EXPECTED, None, None, "the test checked what the fault may do"
        return HELD, None, None, None
    unmet = []
    for fault, expectation in declaration.matching(cell.faults):
        why = expectation.unmet(run.http.last_own_status, facts.error, fixture)
        if why is None:
            return EXPECTED, facts.failure, None, f"{fault}: {expectation.describe()}"
        unmet.append(f"declared for {fault}: {expectation.describe()}, but {why}")
    first = (facts.failure or "").splitlines()[:1]
    message = "\n".join([*first, *unmet])
    return BROKE, message or None, None, None


UNTOUCHED_REASON = (
    "touched nothing the explorer can break: no proxy, service, httpx request or "
    "registered call site during the test's body"
)
