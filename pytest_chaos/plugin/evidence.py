"""The session's evidence, gathered where reports arrive (the only process under
pytest-xdist that sees every test), scored at the end, and written where it was asked for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import final

import pytest

from pytest_chaos.core.redaction import redact_text
from pytest_chaos.plugin.settings import Settings
from pytest_chaos.report import table
from pytest_chaos.report.results import DEVIATIONS, REPORT_ATTRIBUTE, ChaosResult
from pytest_chaos.report.score import Gates, Score

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@final
class Evidence:
    """Every chaos test's result in arrival order, and what the session made of them; a
    plugin of its own, registered by the process that receives every report.

    The reports are read at the end from the terminal reporter, which keeps every one of
    them anyway: a hook of our own on every report would cost each test of a suite a few
    microseconds more (benchmarks/plugin_overhead.py). Without the terminal reporter
    (``-p no:terminal``), :class:`Reports` collects them instead.
    """

    PLUGIN_NAME = "chaos-evidence"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gates = Gates(settings.min_score, settings.max_deviated)
        self._results: dict[str, ChaosResult] = {}
        self._failed: set[str] = set()
        self.score: Score | None = None
        self.html: Path | None = None
        self.tolerated: list[str] = []
        #: Failed tests another gate answers for (the explorer's broken runs, under
        #: ``--chaos-explore-min``): the gates here do not count them again.
        self.answered: set[str] = set()
        #: More sections of ``summary.json`` by name (``explore``), written as they are.
        self.sections: dict[str, object] = {}

    def include(self, result: ChaosResult) -> None:
        """Count ``result`` in the score as if a test had reported it (the explorer's
        verdict on an explored test)."""
        self._results[result.nodeid] = result

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if session.config.pluginmanager.get_plugin("terminalreporter") is None:
            session.config.pluginmanager.register(Reports(), Reports.PLUGIN_NAME)

    def _reports(self, config: pytest.Config) -> list[pytest.TestReport]:
        """Every test report of the session, in the order the tests ran."""
        source = config.pluginmanager.get_plugin("terminalreporter")
        if source is not None:
            stats: dict[str, list[object]] = source.stats
            found = [r for kept in stats.values() for r in kept if isinstance(r, pytest.TestReport)]
            return sorted(found, key=lambda report: getattr(report, "start", 0.0))
        collected: Reports | None = config.pluginmanager.get_plugin(Reports.PLUGIN_NAME)
        return [] if collected is None else collected.reports

    def add(self, report: pytest.TestReport) -> None:
        """Take one report: its chaos result if it carries one, and whether it failed. A
        teardown that fails after the test (a fault it could not undo) makes it an error."""
        if report.failed:
            self._failed.add(report.nodeid)
        carried = report.__dict__.get(REPORT_ATTRIBUTE)
        if carried is not None:
            self._results[report.nodeid] = ChaosResult.from_json(carried)
        elif report.when == "teardown" and report.failed and report.nodeid in self._results:
            result = self._results[report.nodeid]
            result.verdict, result.success_ratio, result.checks_passed = "error", 0.0, 0
            result.message = f"teardown failed: {report.longreprtext.strip().splitlines()[-1]}"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Score the session, apply the gates to its exit status, write the reports."""
        for report in self._reports(session.config):
            self.add(report)
        score = self.score = Score.of(list(self._results.values()))
        if self.gates.active and session.exitstatus in (pytest.ExitCode.OK, 1):
            session.exitstatus = self._exit_status(score)
        folder = self.settings.report_dir
        if folder is not None:
            from pytest_chaos.report import summary

            self.html = summary.write(
                folder,
                score,
                self.gates,
                seed=self.settings.seed,
                dry_run=self.settings.dry_run,
                sections=self.sections,
            )
        step_summary = os.environ.get(STEP_SUMMARY_ENV)
        if step_summary and self._results:
            with open(step_summary, "a", encoding="utf-8") as out:
                out.write(table.markdown(score, self.gates) + "\n")

    def _exit_status(self, score: Score) -> pytest.ExitCode:
        """With gates, they decide for the chaos tests: deviated and halted experiments
        within them do not fail the run; anything else that failed still does."""
        if self.gates.failures(score):
            return pytest.ExitCode.TESTS_FAILED
        deviated = {r.nodeid for r in self._results.values() if r.verdict in DEVIATIONS}
        if self._failed - deviated - self.answered:
            return pytest.ExitCode.TESTS_FAILED
        self.tolerated = sorted(self._failed & deviated)
        return pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = self.terminal_lines()
        if lines:
            terminalreporter.write_sep("=", "chaos")
            for line in lines:
                terminalreporter.write_line(redact_text(line))

    def terminal_lines(self) -> list[str]:
        """The score, the table and the gates' verdict; [] when no chaos test ran."""
        if self.score is None or not self.score.results:
            return []
        lines = table.text(self.score, self.gates)
        if self.tolerated:
            lines.append(
                f"gates passed: {len(self.tolerated)} deviated experiment(s) tolerated, "
                "exit code 0: " + ", ".join(self.tolerated)
            )
        if self.html is not None:
            lines.append(f"chaos report: {self.html}")
        return lines


@final
class Reports:
    """The session's test reports, for when no terminal reporter keeps them."""

    PLUGIN_NAME = "chaos-reports"

    def __init__(self) -> None:
        self.reports: list[pytest.TestReport] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append(report)
