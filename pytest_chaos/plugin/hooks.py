"""The pytest plugin: wires options, the marker, hooks and fixtures to the modules that own
them. It holds no logic of its own."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.plugin import hookspecs, markers, outcomes, records, secrets, settings
from pytest_chaos.plugin.explore_state import is_cell, is_child
from pytest_chaos.plugin.session import SESSION, ChaosSession, chaos_session, session_seed

if TYPE_CHECKING:
    from pytest_chaos.core.faultlog import FaultRecord
    from pytest_chaos.ctk.files import ExperimentFile
    from pytest_chaos.experiment import Experiment


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", markers.MARKER_HELP)
    session = ChaosSession(config)
    config.stash[SESSION] = session
    session.remember_seed()
    # under xdist the controller gathers every report; a round of an exploration hands its
    # reports to the exploring session, which keeps the evidence
    if session.worker_id is None and not is_child(config):
        from pytest_chaos.plugin.evidence import Evidence

        config.pluginmanager.register(Evidence(session.settings), Evidence.PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    chaos = chaos_session(session.config)
    if chaos.worker_id is None:  # one sweep a run: the process that shows the header
        chaos.sweep_leftovers()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return chaos_session(config).header()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Chaos Toolkit experiment files that ``--chaos-experiment-files`` names are tests."""
    patterns = chaos_session(parent.config).settings.experiment_files
    if not patterns:
        return None
    from pytest_chaos.plugin import experiment_files as collect

    if not collect.matches(file_path, patterns, parent.config.rootpath):
        return None
    return collect.ExperimentFileCollector.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    markers.validate(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test whose marker declares an experiment runs its body as the method."""
    declared = markers.of(item)
    if declared is None or declared.experiment is None:
        return (yield)
    from pytest_chaos.plugin.chaos import CHAOS

    with item.stash[CHAOS].around_body(declared.experiment):
        return (yield)


#: The fixtures of this plugin: a test that uses one may show secrets in its report.
CHAOS_FIXTURES = frozenset(
    {
        "chaos",
        "toxiproxy",
        "toxiproxy_session",
        "toxiproxy_python",
        "service",
        "chaos_monkey",
        "chaos_http",
        "canary",
        "flags",
    }
)


@pytest.hookimpl(wrapper=True, trylast=True)  # innermost: other plugins see what it made
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    chaotic = markers.of(item) is not None or not CHAOS_FIXTURES.isdisjoint(
        getattr(item, "fixturenames", ())
    )
    if chaotic and call.excinfo is not None:
        secrets.redact_exception(call.excinfo.value)
    report = yield
    if chaotic:
        secrets.redact_report(report)
    outcomes.mark(report, call)
    if not is_cell(item):  # an explored run counts in its test's verdict
        records.attach(item, report, session_seed)
    return report


def pytest_chaos_fault_applied(item: pytest.Item | None, fault: FaultRecord) -> None:
    records.note_fault(item, fault)


def pytest_chaos_experiment_finished(
    item: pytest.Item, experiment: Experiment | ExperimentFile, journal: dict[str, Any]
) -> None:
    records.note_journal(item, journal)
    from pytest_chaos.plugin import allure

    if allure.active(item.config):
        allure.attach(journal)


def pytest_report_teststatus(
    report: pytest.TestReport | pytest.CollectReport,
) -> tuple[str, str, str] | None:
    """A system not in steady state before the faults is an error, not a failure."""
    return outcomes.status(report)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: hand the controller's seed to every worker."""
    node.workerinput.update(chaos_session(node.config).worker_input())
