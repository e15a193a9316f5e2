"""How a run of an exploration ended, read from its pytest report: the facts pytest knows
(phase, outcome, error, duration, the command that replays it) handed to
:func:`pytest_chaos.explore.judging.result_of`; the report is made to say it too."""

from __future__ import annotations

import os

import pytest

from pytest_chaos.explore.cells import Cell
from pytest_chaos.explore.expectations import Declaration
from pytest_chaos.explore.hang import Hung
from pytest_chaos.explore.judging import Facts, result_of
from pytest_chaos.explore.outcome import EXPECTED, HUNG, NOT_RUN, UNTOUCHED, CellResult
from pytest_chaos.explore.replay import replay_command
from pytest_chaos.explore.settings import ExploreSettings
from pytest_chaos.plugin import markers
from pytest_chaos.plugin.explore_state import RUN, test_of
from pytest_chaos.plugin.session import chaos_session


def judge(
    item: pytest.Item, cell: Cell, call: pytest.CallInfo[None], report: pytest.TestReport
) -> CellResult:
    """The run's result; its report says it too (a run that did what was declared passes,
    a hung one shows where, an untouched baseline is a skip)."""
    run = item.stash.get(RUN, None)
    error = None if call.excinfo is None else call.excinfo.value
    facts = Facts(
        test=test_of(item.nodeid),
        nodeid=item.nodeid,
        phase=report.when,
        passed=report.passed,
        skipped=report.skipped,
        error=error,
        failure=_failure(report),
        duration_s=report.duration,
        replay=_replay(item),
        worker=os.environ.get("PYTEST_XDIST_WORKER"),
    )
    declared = markers.of(item)
    declaration = Declaration() if declared is None else declared.explore
    result = result_of(cell, run, facts, declaration, lambda name: _fixture(item, name))
    if result.outcome == EXPECTED and report.failed:
        report.sections.append(
            ("chaos explore", f"expected: {result.expectation}\n\n{report.longreprtext}")
        )
        report.outcome, report.longrepr = "passed", None
    elif result.outcome == HUNG and isinstance(error, Hung):
        report.longrepr = f"hung: {error}\n\n{error.stack}"
    elif result.outcome in (UNTOUCHED, NOT_RUN) and not report.skipped:
        report.outcome = "skipped"
        line = item.location[1] if item.location[1] is not None else 0
        report.longrepr = (str(item.path), line, f"Skipped: explore: {result.message}")
    return result


def _failure(report: pytest.TestReport) -> str | None:
    """What ended the run, in a line or a few: the skip's reason, or the error pytest
    shows last (the one that failed the test, not what it was chained from)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if not report.failed:
        return None
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    text = report.longreprtext.strip()
    return text.splitlines()[-1] if text else None


def _fixture(item: pytest.Item, name: str) -> object:
    funcargs = getattr(item, "funcargs", {})
    if name not in funcargs:
        raise LookupError(
            f"expect(check=...) asks for the fixture {name!r}, which the test does not use"
        )
    return funcargs[name]


def _replay(item: pytest.Item) -> str:
    """The command that makes this run again: its seed, the explore options that change
    what a run does when they are not the defaults, its node id from where pytest runs."""
    settings = chaos_session(item.config).settings
    default = ExploreSettings()
    options = []
    if settings.explore.latency_ms != default.latency_ms:
        options += ["--chaos-explore-latency", str(settings.explore.latency_ms)]
    if settings.explore.timeout_s != default.timeout_s:
        options += ["--chaos-explore-timeout", f"{settings.explore.timeout_s:g}"]
    where = os.path.relpath(item.path, item.config.invocation_params.dir)
    return replay_command(settings.seed, f"{where}::{item.nodeid.partition('::')[2]}", options)
