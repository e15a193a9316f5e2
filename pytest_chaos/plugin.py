"""The pytest plugin: wires options, the marker, hooks and fixtures to the modules that own
them. It holds no logic of its own."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import explore_plugin, hookspecs, markers, outcomes, sections, settings
from .report import records, secrets
from .session import ChaosSession

if TYPE_CHECKING:
    from .canary.fixture import Canary
    from .chaos import Chaos
    from .ctk.files import ExperimentFile
    from .experiment import Experiment
    from .faults import FaultRecord
    from .flags.fixture import Flags
    from .inject import ChaosMonkey
    from .inject.http import ChaosHTTP
    from .proxy.tracked import ChaosToxiproxy
    from .seeding import TestSeeds
    from .services import ServiceManager

SESSION = pytest.StashKey[ChaosSession]()
#: Exploration (``--chaos-explore``) wires itself in a module of its own.
pytest_plugins = ["pytest_chaos.explore_plugin"]


CHAOS = pytest.StashKey["Chaos"]()


def chaos_session(config: pytest.Config) -> ChaosSession:
    return config.stash[SESSION]


def session_seed(config: pytest.Config) -> int:
    return chaos_session(config).settings.seed


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
    if session.worker_id is None and not explore_plugin.is_child(config):
        from .report.evidence import Evidence

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
    from .ctk import collect

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
    if not explore_plugin.is_cell(item):  # an explored run counts in its test's verdict
        records.attach(item, report, session_seed)
    return report


def pytest_chaos_fault_applied(item: pytest.Item | None, fault: FaultRecord) -> None:
    records.note_fault(item, fault)


def pytest_chaos_experiment_finished(
    item: pytest.Item, experiment: Experiment | ExperimentFile, journal: dict[str, Any]
) -> None:
    records.note_journal(item, journal)
    from .report import allure

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


@pytest.fixture
def chaos_seeds(request: pytest.FixtureRequest) -> TestSeeds:
    """This test's random streams: ``chaos_seeds("purpose")`` is a seeded ``random.Random``."""
    return chaos_session(request.config).seeds(request.node.nodeid)


@pytest.fixture(scope="session")
def toxiproxy_session(request: pytest.FixtureRequest) -> Iterator[ChaosToxiproxy]:
    """Proxies shared by the whole session; deleted, with their faults, when it ends."""
    yield from _tracked(chaos_session(request.config), None)


@pytest.fixture
def toxiproxy(request: pytest.FixtureRequest) -> Iterator[ChaosToxiproxy]:
    """This test's Toxiproxy: proxies it creates and faults it applies are undone at
    teardown, whatever the outcome."""
    yield from _tracked(chaos_session(request.config), request.node)


def _tracked(session: ChaosSession, item: pytest.Item | None) -> Iterator[ChaosToxiproxy]:
    client = session.toxiproxy(item)
    try:
        yield client
    finally:
        errors = client.undo()
        client.close()
        _raise_teardown_errors(errors)


@pytest.fixture
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceManager]:
    """Services this test starts (``service.process(...)``, ``service.container(...)``),
    the faults it applies to them and to this machine, and blast-radius picks; every fault
    is undone and every process and container stopped at teardown, whatever the outcome."""
    from .services import ServiceManager

    session = chaos_session(request.config)
    node = request.node
    manager = ServiceManager(
        log=session.fault_log(node),
        seeds=session.seeds(node.nodeid),
        engine=session.container_engine,
        supervisor=session.supervisor,
        workdir=lambda: tmp_path_factory.mktemp("services-" + re.sub(r"\W", "_", node.name)[:30]),
        on_started=lambda started: node.config.hook.pytest_chaos_service_started(
            item=node, service=started
        ),
    )
    sections.add(node, manager.report_sections)
    try:
        yield manager
    finally:
        _raise_teardown_errors(manager.close())


@pytest.fixture
def chaos_monkey(request: pytest.FixtureRequest) -> Iterator[ChaosMonkey]:
    """This test's Chaos Monkey, enabled, striking every matching call unless a fault
    says otherwise: ``@chaos_monkey.chaos(...)`` and ``chaos_monkey.patch(...)``. Its
    decisions come from the test's seed; its faults are undone and its patches restored at
    teardown, and a failing test's report lists what it injected."""
    monkey = chaos_session(request.config).monkey(request.node)
    sections.add(request.node, monkey.report_sections)
    try:
        yield monkey
    finally:
        _raise_teardown_errors(monkey.undo())


@pytest.fixture
def chaos_http(chaos_monkey: ChaosMonkey) -> Iterator[ChaosHTTP]:
    """HTTP faults for httpx: rules (``chaos_http.status(503, path="/pay")``...), a client
    that applies them (``chaos_http.client()``), or the transport to mount in the
    application's own client. They share ``chaos_monkey``'s seed, switch and record."""
    from .inject.http import ChaosHTTP

    http = ChaosHTTP(chaos_monkey)
    try:
        yield http
    finally:
        _raise_teardown_errors(http.undo())


def _raise_teardown_errors(errors: list[BaseException]) -> None:
    if errors:
        raise RuntimeError(
            "chaos teardown could not undo everything: "
            + "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        )


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Iterator[Chaos]:
    """Experiments: ``chaos.experiment(title, steady_state=[...], method=[...],
    load=chaos.load.http(...))`` checks the steady state, applies the faults on their
    timeline under load, watches the hypothesis, rolls back and checks again; a deviation
    fails the test with an account of it. Journals are kept in ``chaos.journals``."""
    from .chaos import Chaos

    lab = Chaos(request, chaos_session(request.config))
    request.node.stash[CHAOS] = lab
    try:
        yield lab
    finally:
        _raise_teardown_errors(lab.close())


@pytest.fixture
def chaos_experiment_options() -> dict[str, Any]:
    """The options of ``chaos.run_file`` for the Chaos Toolkit experiment files collected
    as tests (``--chaos-experiment-files``): none. Override it in a conftest.py to give
    them ``configuration`` from your fixtures, ``secrets``, ``var_files``, strategies..."""
    return {}


@pytest.fixture
def canary(request: pytest.FixtureRequest) -> Iterator[Canary]:
    """Releases under chaos: ``canary.router({"stable": [...], "canary": [...]})`` splits
    traffic by weight (closed at teardown); ``canary.rollout(router).run()`` moves traffic
    to the canary stage by stage while a judge compares it with the baseline, rolling back
    on a failing verdict; ``canary.switch(...)`` and ``canary.rolling(...)`` release blue-
    green and instance by instance. Their timelines go to the test's experiment journals."""
    from .canary.fixture import Canary

    node = request.node
    releases = Canary(node, chaos_session(request.config).seeds(node.nodeid))
    try:
        yield releases
    finally:
        _raise_teardown_errors(releases.close())


@pytest.fixture
def flags() -> Iterator[Flags]:
    """Feature flags: ``flags.store`` (Unleash's bucketing, the seed material's kinds, a kill
    switch, change listeners), ``flags.clock`` to move gradual rollouts, ``flags.load()``
    for Unleash documents, and ``flags.url``: an OFREP server on a free loopback port, for
    services under test that read their flags over HTTP. Fresh for every test."""
    from .flags.fixture import Flags

    fresh = Flags()
    try:
        yield fresh
    finally:
        fresh.close()


@pytest.fixture
def toxiproxy_python(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A ``toxiproxy.Toxiproxy`` (toxiproxy-python) pointed at the session's server; what
    the test changes through it is reverted at teardown."""
    from .proxy.snapshot import toxiproxy_python_client

    yield from toxiproxy_python_client(chaos_session(request.config).default_url())
