"""Process services with real processes: the handle, each fault as a client sees it, the
whole process tree cleaned up, and bad input refused with a message that says what to do."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from pytest_chaos import probes
from pytest_chaos._net.processes import state, wait_until
from pytest_chaos.services import ProcessService, ServiceError, ServiceManager

from .helpers import APP, app, children_in_log, gone, redis_command, require_redis

HEALTHY = probes.http("/health")


def get(url: str, timeout: float = 5.0) -> httpx.Response:
    return httpx.get(url, timeout=timeout)


# -- the handle ------------------------------------------------------------------------------


def test_the_handle_says_where_the_service_is(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY)
    assert web.host == "127.0.0.1"
    assert web.address == f"127.0.0.1:{web.port}"
    assert web.url == f"http://{web.address}"
    assert web.ports == {"port": web.port}
    assert int(get(web.url + "/pid").text) == web.pid
    assert web.running and not web.paused and web.returncode is None
    assert f"listening on {web.port}" in web.logs()
    assert service["web"] is web and list(service) == [web] and len(service) == 1


def test_named_ports_fill_argv_and_env(service: ServiceManager) -> None:
    script = (
        "import os, sys, time; print(sys.argv[1:], os.environ['ADMIN'], flush=True); time.sleep(60)"
    )
    argv = [sys.executable, "-c", script, "{port:http}", "{port:metrics}"]
    shown = service.process("shown", argv, env={"ADMIN": "{port:admin}"}, ready=probes.log(r"^\["))
    ports = shown.ports
    assert list(ports) == ["http", "metrics", "admin"] and len(set(ports.values())) == 3
    assert shown.port == ports["http"]  # no {port}: the first port the command line names
    assert f"['{ports['http']}', '{ports['metrics']}'] {ports['admin']}" in shown.logs()


def test_a_fixed_port_is_used_as_given(service: ServiceManager) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = service.process("web", app(), ports={"port": port}, ready=HEALTHY)
    assert web.port == port and get(f"http://127.0.0.1:{port}/").text == "hello"


def test_start_false_chooses_ports_and_waits(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY, start=False)
    assert not web.running and web.pid is None and web.state == "not started"
    assert web.port > 0
    web.start()
    assert get(web.url).text == "hello"


def test_a_service_without_port_says_how_to_get_one(service: ServiceManager) -> None:
    quiet = service.process("quiet", [sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(
        ServiceError, match=r"service 'quiet' has no port: put \{port\} in its argv"
    ):
        quiet.url  # noqa: B018


# -- faults, seen from a client --------------------------------------------------------------


def test_kill_refuses_connections_until_started_again(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY)
    first = web.pid
    outage = web.kill()
    assert not web.running and web.pid is None and web.returncode == -signal.SIGKILL
    with pytest.raises(httpx.ConnectError):
        get(web.url)
    assert outage.active
    web.start()
    assert get(web.url).text == "hello" and web.pid != first
    assert not outage.active
    assert [(f.kind, f.target, f.rolled_back_at is not None) for f in service.faults] == [
        ("kill", "web", True)
    ]


def test_stop_as_a_with_block_starts_the_service_again(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY)
    with web.stop():
        assert web.returncode == -signal.SIGTERM
        with pytest.raises(httpx.ConnectError):
            get(web.url)
    assert get(web.url).text == "hello"


def test_pause_times_clients_out_and_resume_answers_them(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY)
    pause = web.pause()
    assert web.paused and state(web.pid or 0) == "T"
    with pytest.raises(httpx.TimeoutException):
        get(web.url, timeout=0.5)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(get, web.url, 10.0)
        web.resume()
        assert waiting.result().text == "hello"
    assert not web.paused and not pause.active
    with web.pause():
        assert state(web.pid or 0) == "T"
    assert get(web.url).text == "hello"


def test_terminate_returns_at_once_and_the_process_exits(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY)
    web.terminate()
    assert web.wait_exit(10) == -signal.SIGTERM
    with pytest.raises(httpx.ConnectError):
        get(web.url)


def test_stop_kills_a_process_that_ignores_sigterm(service: ServiceManager) -> None:
    web = service.process("web", app("--ignore-term"), ready=HEALTHY, stop_timeout=0.3)
    started = time.monotonic()
    web.stop()
    assert time.monotonic() - started >= 0.3
    assert web.returncode == -signal.SIGKILL


def test_restart_keeps_the_port_and_returns_once_ready(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY)
    port, before = web.port, web.pid
    web.restart()
    assert web.port == port and int(get(web.url + "/pid").text) == web.pid != before
    assert [(f.kind, f.rolled_back_at is not None) for f in service.faults] == [("restart", True)]
    web.kill()
    web.restart()  # a service that is down is simply started
    assert get(web.url).text == "hello"


def test_faults_reach_the_whole_process_tree(service: ServiceManager) -> None:
    web = service.process("web", app("--child", "--escapee"), ready=HEALTHY)
    child, escapee = children_in_log(web.logs())
    assert os.getpgid(child) == web.pid and os.getpgid(escapee) == escapee  # left the group

    def states() -> tuple[str | None, str | None]:
        return state(child), state(escapee)

    with web.pause():
        assert wait_until(lambda: states() == ("T", "T"), 5), states()
    assert wait_until(lambda: "T" not in states(), 5), states()
    web.kill()
    assert gone(child) and gone(escapee), states()


def test_faults_on_a_service_that_is_down_are_refused(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=HEALTHY)
    web.kill()
    message = (
        "cannot pause service 'web': it is not running (exited with code -9); start() it first"
    )
    with pytest.raises(ServiceError, match=re.escape(message)):
        web.pause()


def test_a_crashed_test_process_leaves_no_service_behind(tmp_path: os.PathLike[str]) -> None:
    """The supervisor ends the service and the hog when the process that started them
    dies."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from pytest_chaos import probes
        from pytest_chaos.faults import FaultLog
        from pytest_chaos.core.seeding import TestSeeds
        from pytest_chaos.services import ServiceManager

        manager = ServiceManager(log=FaultLog(), seeds=TestSeeds(1, "t"), workdir=lambda: Path({str(tmp_path)!r}))
        web = manager.process("web", [sys.executable, {APP!r}, "--port", "{{port}}"], ready=probes.tcp())
        hog = manager.cpu_hog(1, seconds=30)
        print(web.pid, *hog.pids, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    crashed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    pids = [int(pid) for pid in crashed.stdout.split()]
    assert len(pids) == 2
    assert wait_until(lambda: all(gone(pid) for pid in pids), 10)


# -- bad input -------------------------------------------------------------------------------


def test_argv_as_a_string_is_refused(service: ServiceManager) -> None:
    hint = "write ['redis-server', '--port', '{port}'] instead of 'redis-server --port {port}'"
    with pytest.raises(TypeError, match=re.escape(hint)):
        service.process("redis", "redis-server --port {port}")


@pytest.mark.parametrize("argument", ["{port:}", "--port={port:a b}", "{port:9}"])
def test_bad_port_placeholders_are_refused(service: ServiceManager, argument: str) -> None:
    with pytest.raises(
        ValueError, match=r"argv\[1\]=.*is not a port placeholder; use \{port\} or \{port:NAME\}"
    ):
        service.process("web", ["prog", argument])


def test_other_braces_are_left_alone(service: ServiceManager) -> None:
    script = "import sys, time; print(sys.argv[1:], flush=True); time.sleep(60)"
    shown = service.process(
        "shown", [sys.executable, "-c", script, '{"port": 1}', "{ports}"], ready=probes.log("port")
    )
    assert """['{"port": 1}', '{ports}']""" in shown.logs()


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        (
            {"port": 70000},
            "ports['port']=70000 is not allowed; use 1 to 65535, or 0 for a free port",
        ),
        ({"port": "80"}, "ports['port']='80' is not allowed"),
        ({"a b": 0}, "ports: name 'a b' is not allowed"),
    ],
)
def test_bad_fixed_ports_are_refused(
    service: ServiceManager, ports: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        service.process("web", app(), ports=ports)


def test_a_missing_program_is_named(service: ServiceManager) -> None:
    with pytest.raises(
        ServiceError, match=r"cannot start service 'nope' \(no-such-program-here\): .*No such file"
    ):
        service.process("nope", ["no-such-program-here"])


def test_other_bad_input_is_named(service: ServiceManager) -> None:
    service.process("web", app(), ready=HEALTHY)
    with pytest.raises(ValueError, match="this test already has a service named 'web'"):
        service.process("web", app())
    with pytest.raises(KeyError, match="no service named 'db'; this test's services: web"):
        service["db"]
    with pytest.raises(ValueError, match="cwd='/no/such/dir' is not an existing directory"):
        service.process("elsewhere", app(), cwd="/no/such/dir")
    with pytest.raises(TypeError, match=r"env\['X'\]=None: expected a string"):
        service.process("env", app(), env={"X": None})  # type: ignore[dict-item]
    with pytest.raises(
        ValueError, match="service 'slow': ready_timeout=-1; use a number of seconds"
    ):
        service.process("slow", app(), ready_timeout=-1)
    with pytest.raises(TypeError, match=r"argv=\[\]: expected a non-empty list"):
        service.process("empty", [])


# -- a real Redis ----------------------------------------------------------------------------


@pytest.fixture
def redis(service: ServiceManager) -> ProcessService:
    argv = [
        require_redis(),
        "--port",
        "{port}",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    return service.process(
        "redis", argv, ready=[probes.tcp(), probes.log("Ready to accept connections")]
    )


def test_redis_outage_pause_and_restart_seen_by_a_client(
    redis: ProcessService, service: ServiceManager
) -> None:
    assert redis_command(redis.address, "SET", "greeting", "hello") == "OK"
    with redis.pause(), pytest.raises(TimeoutError):
        redis_command(redis.address, "PING", timeout=0.5)
    assert redis_command(redis.address, "GET", "greeting") == "hello"  # the same process
    redis.kill()
    with pytest.raises(ConnectionRefusedError):
        redis_command(redis.address, "PING")
    redis.start()
    assert redis_command(redis.address, "PING") == "PONG"
    assert redis_command(redis.address, "GET", "greeting") is None  # a new process: data gone
    redis_command(redis.address, "SET", "greeting", "again")
    redis.restart()
    assert redis_command(redis.address, "GET", "greeting") is None
    assert [f.kind for f in service.faults] == ["pause", "kill", "restart"]


def test_an_interrupted_teardown_kills_the_trees_at_once(tmp_path: os.PathLike[str]) -> None:
    """Teardown waits for a service that ignores SIGTERM; an interruption (here SIGALRM
    raising KeyboardInterrupt, as a second Ctrl-C would) kills its tree before it goes on,
    without waiting for the session's end."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from pytest_chaos import probes
        from pytest_chaos.faults import FaultLog
        from pytest_chaos.leftovers.supervisor import Supervisor
        from pytest_chaos.core.seeding import TestSeeds
        from pytest_chaos.services import ServiceManager
        from pytest_chaos._net.processes import members

        supervisor = Supervisor()
        manager = ServiceManager(log=FaultLog(), seeds=TestSeeds(1, "t"),
                                 workdir=lambda: Path({str(tmp_path)!r}), supervisor=supervisor)
        web = manager.process("web", [sys.executable, {APP!r}, "--port", "{{port}}",
                              "--ignore-term", "--child"], ready=probes.log("^child "),
                              stop_timeout=600)
        pid = web.pid
        def interrupt(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, interrupt)
        signal.alarm(1)
        try:
            manager.close()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        import time
        deadline = time.monotonic() + 60
        while members(pid, web.marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        print("left", members(pid, web.marker), web.running, flush=True)
        os._exit(0)  # no supervisor close: what is gone went at the interruption
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.splitlines() == ["interrupted", "left [] False"], done.stderr
