"""``service.container``, run for real: a busybox HTTP server in a container of the engine
that $DOCKER_HOST names (in CI, Podman's Docker API, set up by ``.ci/podman-setup``),
broken on purpose, and removed at teardown.

Without an engine, these skip with the engine's own error as the reason; with
PYTEST_CHAOS_REQUIRE_CONTAINERS=1 (CI) they fail instead. One container test runs at a time
on the machine (``containers.exclusive``): a session that starts a container sweeps the
containers of dead sessions, which must not happen behind the back of another test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_chaos import probes
from pytest_chaos._net.containers import OWNER_PID_LABEL, SESSION_LABEL
from pytest_chaos._net.processes import wait_until
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.faults import FaultLog
from pytest_chaos.services import ContainerService, ReadinessError, ServiceError, ServiceManager
from pytest_chaos.services.manager import SERVICE_LABEL

from ..containers import (
    REQUIRE_ENV,
    labelled,
    remove_quietly,
    require_engine,
)
from ..servers import ROOT

INNER_TIMEOUT_S = 120
#: an HTTP server on container port 8080 that says it is serving, then serves "hello"
HTTPD = [
    "sh",
    "-c",
    "mkdir -p /www && echo hello > /www/index.html && echo serving && "
    "exec httpd -f -v -p 8080 -h /www",
]


def web(service: ServiceManager, image: str, **options: Any) -> ContainerService:
    return service.container(
        "web", image, HTTPD, ports=[8080], ready=probes.http("/", body="hello"), **options
    )


def answers(handle: ContainerService) -> str:
    return httpx.get(handle.url, timeout=2).text


def refused(handle: ContainerService) -> bool:
    try:
        socket.create_connection((handle.host, handle.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# -- starting: the handle ---------------------------------------------------------------------


def test_container_serves_on_a_loopback_port(
    image: str, engine: Any, service: ServiceManager
) -> None:
    handle = web(service, image, env={"GREETING": "hi"}, mem_limit="64m")
    assert answers(handle) == "hello\n"
    assert handle.host == "127.0.0.1"
    assert list(handle.ports) == ["8080/tcp"] and handle.port == handle.ports["8080/tcp"]
    assert handle.address == f"127.0.0.1:{handle.port}" and handle.url.endswith(handle.address)
    assert handle.running and handle.state == "running"
    assert "serving" in handle.logs() and handle.logs(lines=1).count("\n") == 0

    container = engine.containers.get(handle.id)
    bindings = container.attrs["HostConfig"]["PortBindings"]["8080/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(handle.port)}]
    assert container.labels[SERVICE_LABEL] == "web"
    assert container.labels[OWNER_PID_LABEL] == str(os.getpid())
    assert "GREETING=hi" in container.attrs["Config"]["Env"]
    assert container.attrs["HostConfig"]["Memory"] == 64 * 2**20  # passed on to the SDK
    assert service["web"] is handle


def test_log_probe_reads_the_container_log(image: str, service: ServiceManager) -> None:
    handle = service.container(
        "web", image, HTTPD, ports={8080: None}, ready=[probes.log(r"^serving$"), probes.tcp()]
    )
    assert answers(handle) == "hello\n"


# -- faults -----------------------------------------------------------------------------------


def test_kill_refuses_connections_until_started(image: str, service: ServiceManager) -> None:
    handle = web(service, image)
    pause = handle.pause()  # a kill ends a pause
    with handle.kill() as fault:
        assert not pause.active
        assert refused(handle)
        assert not handle.running and "exited with code 137" in handle.state
    assert answers(handle) == "hello\n"
    assert fault.record.kind == "kill" and fault.record.target == "web"
    assert fault.record.details["container"] == handle.short_id
    assert not fault.active


def test_pause_times_clients_out_until_unpaused(image: str, service: ServiceManager) -> None:
    handle = web(service, image)
    fault = handle.pause()
    assert handle.paused and handle.status == "paused"
    with pytest.raises(httpx.TimeoutException):
        httpx.get(handle.url, timeout=0.5)
    handle.unpause()
    assert not fault.active and not handle.paused
    assert answers(handle) == "hello\n"
    assert [f.kind for f in service.faults] == ["pause"]


def test_stop_and_start_then_restart(image: str, service: ServiceManager) -> None:
    handle = web(service, image)
    port, first_id = handle.port, handle.id
    handle.stop(timeout=1)
    assert refused(handle)
    handle.start()
    assert answers(handle) == "hello\n"
    handle.restart(timeout=1)
    assert answers(handle) == "hello\n"
    assert (handle.port, handle.id) == (port, first_id)
    assert handle.output_since_start().count("serving") == 1  # this run's output only
    assert handle.logs().count("serving") == 3  # every run's
    assert [f.kind for f in service.faults] == ["stop", "restart"]
    assert all(f.rolled_back_at is not None for f in service.faults)


def test_remove_and_create_anew(image: str, engine: Any, service: ServiceManager) -> None:
    import docker

    handle = web(service, image)
    port, first_id = handle.port, handle.id
    with handle.remove():
        assert handle.id is None and handle.status == "removed"
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get(first_id)
        assert refused(handle)
    assert answers(handle) == "hello\n"
    assert handle.port == port and handle.id != first_id
    # the removed container's log is kept; the new one's reaches the engine's log a moment
    # after it answers, later still on a busy machine
    assert wait_until(lambda: handle.logs().count("serving") == 2, 30), handle.logs()


def test_dry_run_records_and_leaves_it_running(image: str) -> None:
    manager = ServiceManager(
        log=FaultLog(dry_run=True), seeds=TestSeeds(1, "t"), workdir=lambda: Path("unused")
    )
    try:
        handle = web(manager, image)
        for fault in (handle.kill, handle.pause, handle.remove):
            fault()
        handle.restart()
        assert answers(handle) == "hello\n"
        assert [(f.kind, f.dry_run) for f in manager.faults] == [
            ("kill", True),
            ("pause", True),
            ("remove", True),
            ("restart", True),
        ]
    finally:
        assert manager.close() == []
    assert handle.status == "removed"


# -- readiness errors -------------------------------------------------------------------------


def test_container_that_exits_fails_readiness_with_its_log(
    image: str, service: ServiceManager
) -> None:
    with pytest.raises(ReadinessError) as raised:
        service.container(
            "broken",
            image,
            ["sh", "-c", "echo config file missing >&2; exit 3"],
            ports=[8080],
            ready=probes.tcp(),
        )
    message = str(raised.value)
    assert "service 'broken' exited with code 3 before it was ready" in message, message
    assert "config file missing" in message and "TCP connect to 127.0.0.1:" in message


def test_container_not_ready_in_time(image: str, service: ServiceManager) -> None:
    with pytest.raises(ReadinessError) as raised:
        service.container(
            "slow",
            image,
            ["sh", "-c", "echo warming up; exec sleep 30"],
            ports=[8080],
            ready=probes.tcp(),
            ready_timeout=1,
            stop_timeout=0,
        )
    message = str(raised.value)
    assert "service 'slow' was not ready within 1 s" in message and "warming up" in message
    assert not service["slow"].running  # nothing half-started keeps running


def test_missing_image_says_so(image: str, service: ServiceManager) -> None:
    missing = "localhost/pytest-chaos-missing:0"
    with pytest.raises(ServiceError, match=f"the image {missing} is not on the engine"):
        service.container("ghost", missing, ports=[80])


# -- input checks and the engine --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ports", "error"),
    [
        ([0], r"container port 0 is not allowed"),
        (["80/sctp"], r"container port '80/sctp' is not allowed"),
        ({80: 70000}, r"ports\[80\]=70000 is not allowed; use a host port"),
    ],
)
def test_bad_ports_are_named(service: ServiceManager, ports: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        service.container("web", "any", ports=ports)


def test_no_engine_gives_the_engines_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("docker")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    # a manager of its own: the session's engine may be connected already
    manager = ServiceManager(log=FaultLog(), seeds=TestSeeds(1, "t"), workdir=lambda: tmp_path)
    with pytest.raises(ServiceError) as raised:
        manager.container("web", "any", ports=[80])
    assert manager.close() == []
    assert f"service 'web': no container engine answers at unix://{tmp_path}/none.sock" in str(
        raised.value
    )
    # and the container tests skip (or, where CI demands containers, fail) with that error
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no container engine answers"):
        require_engine()
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"no container engine answers.*{REQUIRE_ENV}"):
        require_engine()


# -- teardown, reports, and the next session --------------------------------------------------

FAILING_TEST = """
from pathlib import Path

from pytest_chaos import probes

HTTPD = {httpd!r}


def test_fails(service):
    web = service.container("web", {image!r}, HTTPD, ports=[8080], ready=probes.tcp())
    web.pause()
    Path("container.id").write_text(web.id)
    assert False, "the check failed"
"""

CRASHING_TEST = """
import os
import signal
from pathlib import Path


def test_crash(service):
    web = service.container("web", {image!r}, ["sleep", "60"])
    Path("container.id").write_text(web.id)
    Path("owner.pid").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
"""

NEXT_TEST = """
def test_next(service):
    service.container("web", {image!r}, ["true"])
"""


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *args, "-p", "no:cacheprovider", "-p", "no:randomly", timeout=INNER_TIMEOUT_S
    )


@pytest.mark.usefixtures("isolated_env")
def test_failing_test_reports_the_log_and_removes_the_container(
    pytester: pytest.Pytester, image: str, engine: Any
) -> None:
    """The container of a failing test (left paused, even) is removed at teardown, and the
    report shows its log. The inner session finds the engine through $DOCKER_HOST."""
    pytester.makepyfile(test_inner=FAILING_TEST.format(httpd=HTTPD, image=image))
    result = run_inner(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert re.search(r"service web log.*\n.*container \w+ of .*busybox.*\n.*serving", out), out
    container_id = (pytester.path / "container.id").read_text()
    assert [c for c in labelled(engine, SESSION_LABEL) if c.id == container_id] == []


@pytest.mark.usefixtures("isolated_env")
def test_next_session_sweeps_a_crashed_sessions_container(
    pytester: pytest.Pytester, image: str, engine: Any
) -> None:
    pytester.makepyfile(test_crash=CRASHING_TEST.format(image=image))
    crashed = run_inner(pytester)
    assert crashed.ret == -signal.SIGKILL, crashed.stdout.str() + crashed.stderr.str()
    leftover_id = (pytester.path / "container.id").read_text()
    dead_pid = (pytester.path / "owner.pid").read_text()
    [leftover] = labelled(engine, f"{OWNER_PID_LABEL}={dead_pid}")
    try:
        assert leftover.id == leftover_id and leftover.status == "running"
        pytester.makepyfile(test_crash="")
        pytester.makepyfile(test_next=NEXT_TEST.format(image=image))
        swept = run_inner(pytester, "-o", "log_cli=true", "--log-cli-level=WARNING")
        swept.assert_outcomes(passed=1)
        assert f"removed container {leftover.short_id} of the dead pytest-chaos session" in (
            swept.stdout.str()
        )
        assert labelled(engine, f"{OWNER_PID_LABEL}={dead_pid}") == []
    finally:
        remove_quietly(leftover)


# -- the documentation's example --------------------------------------------------------------


def container_example() -> str:
    page = (ROOT / "docs" / "services.md").read_text()
    [example] = [
        block
        for block in re.findall(r"```python\n(.*?)```", page, re.S)
        if "service.container(" in block and "def test_" in block
    ]
    return example


@pytest.mark.usefixtures("isolated_env")
def test_the_docs_example_runs(pytester: pytest.Pytester, image: str) -> None:
    pytester.makepyfile(test_example=container_example())
    result = run_inner(pytester)
    result.assert_outcomes(passed=len(re.findall(r"^def test_", container_example(), re.M)))
