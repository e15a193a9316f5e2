"""The pytest side of exploration (``pytest --chaos-explore``): the hooks that choose a
session's mode, make the runs items parametrized by their cell, watch each run, start the
rounds and hand their findings to the score, the summary and the terminal. The logic is in
:mod:`pytest_chaos.explore`; the session's state in :mod:`.explore_state`, the rounds'
child sessions in :mod:`.explore_rounds`, how a run ended in :mod:`.explore_judge`, the
score's verdicts in :mod:`.explore_verdicts`, the fixtures in
:mod:`pytest_chaos.plugin.fixtures.explore`."""

from __future__ import annotations

import argparse
import fnmatch
import os
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, final

import pytest

from pytest_chaos.plugin import settings as settings_module
from pytest_chaos.plugin.explore_state import (
    CELL_FIXTURE,
    CELLS,
    DEADLINE_OPTION,
    EXPLORING,
    FEED_OPTION,
    OFF,
    OPTED_IN,
    REPORT_ATTRIBUTE,
    RUN,
    STATE,
    UNEXPLORABLE,
    ExploreState,
    cell_of,
    is_cell,
    is_child,
    state,
    test_of,
)

if TYPE_CHECKING:
    from pytest_chaos.proxy.client import Proxy
    from pytest_chaos.services.lifecycle import Service


# -- options and modes ---------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """The options a round's child session gets from the exploring one (not for users)."""
    group = parser.getgroup("chaos")
    group.addoption(FEED_OPTION, dest="chaos_explore_feed", type=int, help=argparse.SUPPRESS)
    group.addoption(
        DEADLINE_OPTION, dest="chaos_explore_deadline", type=float, help=argparse.SUPPRESS
    )


def pytest_cmdline_main(config: pytest.Config) -> None:
    """Decide the mode; an exploring session runs no test itself, so pytest-xdist's
    workers, if asked for, belong to the rounds' sessions."""
    requested = _requested_cells(config)
    if requested:
        mode = CELLS
    elif settings_module.flag(config, settings_module.EXPLORE):
        mode = EXPLORING
    else:
        mode = OFF
    if mode != OFF and settings_module.flag(config, settings_module.DRY_RUN):
        raise pytest.UsageError(
            "--chaos-explore cannot run under --chaos-dry-run: its runs are what the faults "
            "do, and a dry run applies none; drop one of the two"
        )
    config.stash[STATE] = ExploreState(mode, requested)
    if mode == EXPLORING and getattr(config.option, "tx", None):
        config.option.dist, config.option.tx = "no", []


def _requested_cells(config: pytest.Config) -> dict[tuple[Path, str], list[str]]:
    """The explore ids of the node ids given as arguments, by (module path, test
    function's name within the module)."""
    from pytest_chaos.explore.cells import split_name

    found: dict[tuple[Path, str], list[str]] = {}
    base = config.invocation_params.dir
    for arg in config.args:
        path, sep, rest = arg.partition("::")
        if not sep:
            continue
        *outer, last = rest.split("::")
        name, explore_id = split_name(last)
        if explore_id is None:
            continue
        function = "::".join([*outer, name.partition("[")[0]])
        key = ((base / path).resolve(), function)
        found.setdefault(key, [])
        if explore_id not in found[key]:
            found[key].append(explore_id)
    return found


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    explore = state(config)
    if explore.mode == OFF:
        return
    explore.deadline = config.getoption("chaos_explore_deadline", None)
    if hasattr(config, "workerinput"):
        return  # an xdist worker: its reports go to the controller, which keeps them
    config.pluginmanager.register(Collector(explore), Collector.NAME)  # (opted in: later)
    feed = config.getoption("chaos_explore_feed", None)
    if feed is not None:
        from pytest_chaos.explore.feed import FeedWriter
        from pytest_chaos.plugin.explore_rounds import FeedPlugin

        explore.feed = FeedWriter(feed)
        config.pluginmanager.register(FeedPlugin(config, explore.feed), FeedPlugin.NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    explore = state(config)
    if explore.feed is not None:
        explore.feed.close()


# -- the runs as items ---------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """In a session running cells, each test named with explore ids is parametrized by
    them (last, after its own parameters)."""
    explore = state(metafunc.config)
    if explore.mode != CELLS:
        return
    definition = metafunc.definition
    function = definition.nodeid.partition("::")[2]
    ids = explore.requested.get((Path(definition.path).resolve(), function))
    if not ids:
        return
    from pytest_chaos.explore.cells import Cell, CellError

    try:
        cells = [Cell.parse(explore_id) for explore_id in ids]
    except CellError as error:
        raise pytest.UsageError(f"{definition.nodeid}: {error}") from None
    metafunc.fixturenames.append(CELL_FIXTURE)
    metafunc.parametrize(CELL_FIXTURE, cells, ids=[cell.id for cell in cells], indirect=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Exploring: the test functions that do not opt out are explored. Otherwise, the
    tests that opt in (``explore=True``) are taken aside, to be explored after the rest
    have run."""
    explore = state(config)
    if explore.mode == CELLS:
        explore.items = {test_of(item.nodeid): item for item in items if is_cell(item)}
        return
    from pytest_chaos.plugin import markers

    def enabled(item: pytest.Item) -> bool | None:
        declared = markers.of(item)
        return None if declared is None else declared.explore.enabled

    if explore.mode == EXPLORING:
        chosen = [i for i in items if isinstance(i, pytest.Function) and enabled(i) is not False]
        left = [item for item in items if item not in chosen]
        if left:
            config.hook.pytest_deselected(items=left)
        items[:] = chosen
    else:
        chosen = [i for i in items if isinstance(i, pytest.Function) and enabled(i) is True]
        if not chosen:
            return
        if hasattr(config, "workerinput"):
            for item in chosen:
                item.stash[UNEXPLORABLE] = (
                    "explore=True cannot be honoured by a pytest-xdist worker: add "
                    "--chaos-explore (which explores every selected test and hands the runs "
                    "to xdist), or run this test without -n"
                )
            return
        explore.mode = OPTED_IN
        config.pluginmanager.register(Collector(explore), Collector.NAME)
        items[:] = [item for item in items if item not in chosen]
    explore.items = {item.nodeid: item for item in chosen}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that cannot be explored here fails; a run after a time budget is spent is
    skipped (before its fixtures, inside every plugin's set-up)."""
    if UNEXPLORABLE in item.stash:
        pytest.fail(item.stash[UNEXPLORABLE], pytrace=False)
    deadline = state(item.config).deadline
    if deadline is not None and time.time() >= deadline and is_cell(item):
        pytest.skip("not run: the exploration's time budget was spent")


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_setup")
def pytest_runtest_setup_watch(item: pytest.Item) -> Generator[None, None, None]:
    """Before the test's fixtures: start watching what it makes."""
    cell = cell_of(item)
    if cell is None:
        return (yield)
    from pytest_chaos.explore.run import CellRun
    from pytest_chaos.plugin.session import chaos_session

    session = chaos_session(item.config)
    run = CellRun(
        cell,
        seed=session.seeds(item.nodeid).int_seed("explore"),
        latency_ms=session.settings.explore.latency_ms,
        ignored=lambda address: address in _api_addresses(session.started_urls()),
        is_test_file=_test_files(item.config),
    )
    item.stash[RUN] = run
    run.begin()
    return (yield)


def _test_files(config: pytest.Config) -> Callable[[str], bool]:
    """Whether a source file is test code: a conftest.py, or a file pytest collects tests
    from (``python_files``)."""
    patterns = [str(p) for p in config.getini("python_files")]

    def is_test_file(filename: str) -> bool:
        name = os.path.basename(filename)
        return name == "conftest.py" or any(
            fnmatch.fnmatch(filename if "/" in p else name, p if "/" not in p else f"*{p}")
            for p in patterns
        )

    return is_test_file


def _api_addresses(urls: list[str]) -> set[str]:
    import httpx

    found = set()
    for url in urls:
        parsed = httpx.URL(url)
        found.add(f"{parsed.host}:{parsed.port}")
        if parsed.host in ("127.0.0.1", "localhost"):
            found.add(f"{'localhost' if parsed.host == '127.0.0.1' else '127.0.0.1'}:{parsed.port}")
    return found


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """The body runs under the cell's faults, recorded, with the hang timeout."""
    run = item.stash.get(RUN, None)
    if run is None:
        return (yield)
    from pytest_chaos.explore.hang import Watchdog
    from pytest_chaos.plugin.session import chaos_session

    timeout_s = chaos_session(item.config).settings.explore.timeout_s
    with Watchdog(timeout_s):
        try:
            run.start_body()
            return (yield)
        finally:
            run.end_body()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        run = item.stash.get(RUN, None)
        if run is not None:
            run.finish()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    cell = cell_of(item)
    decides = report.when == "call" or (report.when == "setup" and not report.passed)
    if cell is None or not decides:
        return report
    from pytest_chaos.plugin.explore_judge import judge

    result = judge(item, cell, call, report)
    setattr(report, REPORT_ATTRIBUTE, result.to_json())
    return report


@final
class Collector:
    """Keeps the result of every run reported in this process (the one where every
    report arrives: the controller under pytest-xdist, the exploring session for its
    rounds' runs)."""

    NAME = "chaos-explore-collector"

    def __init__(self, explore: ExploreState) -> None:
        self.explore = explore

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        carried = report.__dict__.get(REPORT_ATTRIBUTE)
        if carried is not None:
            from pytest_chaos.explore.outcome import CellResult

            self.explore.results.append(CellResult.from_json(carried))


# -- what the test makes -------------------------------------------------------------------


def pytest_chaos_proxy_created(item: pytest.Item | None, proxy: Proxy, name: str) -> None:
    run = None if item is None else item.stash.get(RUN, None)
    if run is not None:
        run.proxy_created(name, proxy)


def pytest_chaos_service_started(item: pytest.Item, service: Service) -> None:
    run = item.stash.get(RUN, None)
    if run is not None:
        run.service_ready(service)


# -- exploring -----------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Exploring: the rounds, in child sessions, instead of running the tests here; with
    tests that opted in, their rounds after the other tests ran."""
    explore = state(session.config)
    if explore.mode not in (EXPLORING, OPTED_IN) or session.config.option.collectonly:
        return (yield)
    if explore.mode == EXPLORING:
        session.items = []  # pytest's loop runs nothing here: the rounds run the tests
    result = yield
    from pytest_chaos.plugin.explore_rounds import explore_tests, stop_reason

    if stop_reason(session) is None:
        explore.exploration = explore_tests(session, list(explore.items))
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Read the exploration; hand the score its verdicts and summary.json its matrix; with
    ``--chaos-explore-min``, the gate decides for the broken and hung runs."""
    config = session.config
    explore = state(config)
    if explore.mode == OFF or is_child(config) or hasattr(config, "workerinput"):
        return
    from pytest_chaos.explore.results import Findings
    from pytest_chaos.explore.rounds import Exploration
    from pytest_chaos.plugin.evidence import Evidence
    from pytest_chaos.plugin.explore_verdicts import failed_nodeids, verdicts
    from pytest_chaos.plugin.session import chaos_session

    settings = chaos_session(config).settings
    exploration = explore.exploration or Exploration(results=list(explore.results))
    findings = explore.findings = Findings(exploration, settings.explore.min_held)
    evidence: Evidence | None = config.pluginmanager.get_plugin(Evidence.PLUGIN_NAME)
    answered = {run.nodeid for run in findings.problems()}
    if evidence is not None:
        evidence.sections["explore"] = findings.to_json()
        for result in verdicts(config, findings):
            evidence.include(result)
    if findings.min_held is not None and session.exitstatus in (
        pytest.ExitCode.OK,
        pytest.ExitCode.TESTS_FAILED,
    ):
        failed = failed_nodeids(config) - answered
        bad = failed or findings.gate_failure() is not None
        session.exitstatus = pytest.ExitCode.TESTS_FAILED if bad else pytest.ExitCode.OK
        if evidence is not None:
            evidence.answered |= answered


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    findings = state(terminalreporter.config).findings
    if findings is None or not findings.tests():
        return
    terminalreporter.write_sep("=", "chaos explore")
    for line in findings.lines():
        terminalreporter.write_line(line)
