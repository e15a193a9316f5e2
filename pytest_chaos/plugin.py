"""The pytest plugin: wires options, the marker, hooks and fixtures to the modules that own
them. It holds no logic of its own."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from . import hookspecs, markers, settings
from .session import ChaosSession

if TYPE_CHECKING:
    from .proxy.tracked import ChaosToxiproxy
    from .seeding import TestSeeds
    from .services import ServiceManager

SESSION = pytest.StashKey[ChaosSession]()
SERVICES = pytest.StashKey["ServiceManager"]()


def chaos_session(config: pytest.Config) -> ChaosSession:
    return config.stash[SESSION]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", markers.MARKER_HELP)
    session = ChaosSession(config)
    config.stash[SESSION] = session
    session.remember_seed()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def pytest_report_header(config: pytest.Config) -> str:
    return chaos_session(config).header()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    markers.validate(items)


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
        workdir=lambda: tmp_path_factory.mktemp("services-" + re.sub(r"\W", "_", node.name)[:30]),
    )
    node.stash[SERVICES] = manager
    if not request.config.pluginmanager.has_plugin(_ServiceLogs.name):
        request.config.pluginmanager.register(_ServiceLogs(), _ServiceLogs.name)
    try:
        yield manager
    finally:
        _raise_teardown_errors(manager.close())


class _ServiceLogs:
    """Registered when a test first asks for ``service`` (so that other sessions pay
    nothing): a failing test's report gets the last log lines of each of its services."""

    name = "chaos-service-logs"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, None]:
        outcome = yield
        manager = item.stash.get(SERVICES, None)
        if manager is not None:
            report: pytest.TestReport = outcome.get_result()
            if report.failed:
                report.sections.extend(manager.report_sections())


def _raise_teardown_errors(errors: list[BaseException]) -> None:
    if errors:
        raise RuntimeError(
            "chaos teardown could not undo everything: "
            + "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        )


@pytest.fixture
def toxiproxy_python(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A ``toxiproxy.Toxiproxy`` (toxiproxy-python) pointed at the session's server; what
    the test changes through it is reverted at teardown."""
    from .proxy.snapshot import toxiproxy_python_client

    yield from toxiproxy_python_client(chaos_session(request.config).default_url())
