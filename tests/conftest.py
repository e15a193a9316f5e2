"""Fixtures shared by every test folder: Toxiproxy API servers and pytester."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos._net.containers import SESSION_LABEL, EngineError, Owner, connect_engine
from pytest_chaos.proxy.backends import embedded_argv

from .proxy.helpers import TcpServer, echo_server
from .servers import (
    CONFORMANCE,
    ApiServer,
    free_port,
    require_real_server,
    start_logged_server,
    stop_server,
)

pytest_plugins = ["pytester"]

#: Plugins that the pytest sessions the tests start (pytester's, game days', the docs'
#: fragments') do not need, and that cost each of them about 1.6 s of start-up: Schemathesis
#: and Hypothesis register pytest plugins, and both import all of Hypothesis.
LEAN_INNER_SESSIONS = "-p no:schemathesis -p no:hypothesispytest"


def pytest_configure(config: pytest.Config) -> None:
    """The pytest processes this session's tests start load only the plugins they use.
    Not the xdist workers: they run the tests, Schemathesis's among them."""
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the xdist controller, about to start its workers
    os.environ["PYTEST_ADDOPTS"] = " ".join(
        filter(None, [os.environ.get("PYTEST_ADDOPTS", ""), LEAN_INNER_SESSIONS])
    )


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's pytester, whose sessions load only the plugins they use too (pytester
    clears PYTEST_ADDOPTS; this puts the lean options back)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", LEAN_INNER_SESSIONS)
    return pytester


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Twice as many workers as cores, at most 6: most of the suite waits on real servers,
    processes and timers rather than computing, so two workers a core keep the cores busy."""
    return min(6, 2 * (os.cpu_count() or 1))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Skipped tests, one line per reason with its count (pyproject's addopts leave out
    ``-rs``, which lists them one line per test)."""
    reasons = Counter(_skip_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if reasons:
        terminalreporter.section("skipped, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count:5d}  {reason}")


def _skip_reason(report: Any) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return str(reason).removeprefix("Skipped: ")


@pytest.fixture(scope="session", autouse=True)
def no_container_survives() -> Iterator[None]:
    """After the last test: no container is left that this test process, or an inner
    session that has ended since, started (containers of live sessions elsewhere, such as
    another xdist worker's, are theirs to remove)."""
    yield
    client = _engine_or_none()
    if client is None:
        return
    try:
        left = [
            container.short_id
            for container in client.containers.list(all=True, filters={"label": SESSION_LABEL})
            if (owner := Owner.from_labels(container.labels or {})) is not None
            and (owner.pid == os.getpid() or owner.dead_reason(container.status) is not None)
        ]
    finally:
        client.close()
    assert not left, f"containers outlived the tests that started them: {left}"


def _engine_or_none() -> Any:
    """A client of the container engine if one answers; without one no container exists."""
    try:
        import docker

        return connect_engine(docker)
    except (ImportError, EngineError):
        return None


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    port = free_port()
    argv = embedded_argv(port, seed=1)
    # Logs go to a file: a session-long server writing into a pipe nobody reads would block
    # once the pipe's 64 KiB buffer fills, and every later test would hang.
    log = tmp_path_factory.mktemp("embedded-server") / "server.log"
    server = start_logged_server("embedded", argv, port, log)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    binary = require_real_server()
    port = free_port()
    argv = [binary, "-host", "127.0.0.1", "-port", str(port)]
    log = tmp_path_factory.mktemp("real-server") / "server.log"  # see embedded_server
    server = start_logged_server("real", argv, port, log)
    yield server
    stop_server(server)


@pytest.fixture(params=["embedded", "real"])
def api_server(request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    """Each test using this runs twice: on the embedded server and on the real one."""
    if request.param == "real":
        request.applymarker(pytest.mark.realserver)
    server: ApiServer = request.getfixturevalue(f"{request.param}_server")
    server.clear()
    yield server
    server.clear()


@pytest.fixture
def server(embedded_server: ApiServer) -> Iterator[ApiServer]:
    """The session's embedded server, emptied before and after the test."""
    embedded_server.clear()
    yield embedded_server
    embedded_server.clear()


@pytest.fixture
def echo() -> Iterator[TcpServer]:
    """A threaded echo server on a free loopback port."""
    with echo_server() as upstream:
        yield upstream


@pytest.fixture
def conformance() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance data not found at {CONFORMANCE} (it lives in ../shared)")
    return CONFORMANCE
