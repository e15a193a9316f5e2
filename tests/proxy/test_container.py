"""The ``container`` backend and the Compose file, run for real: the Toxiproxy 2.12 image in
a container of the engine that $DOCKER_HOST names (in CI, Podman's Docker API, set up by
``.ci/podman-setup``), driven through the Docker SDK.

Without an engine, these skip with the engine's own error as the reason; with
PYTEST_CHAOS_REQUIRE_CONTAINERS=1 (CI) they fail instead. One runs at a time on the machine
(``containers.exclusive``): every session of the backend sweeps the containers of dead
sessions, which must not happen behind the back of the test that checks it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_chaos._net.containers import OWNER_HOST_LABEL, OWNER_PID_LABEL, SESSION_LABEL, Owner
from pytest_chaos.proxy.backends import BackendError, free_port, wait_ready

from ..containers import (
    IMAGE,
    exclusive,
    labelled,
    remove_quietly,
    require_compose,
    require_engine,
    require_image,
)
from ..servers import ROOT, isolate_chaos_env
from .helpers import assert_fixture_suite_passed

SUITE = Path(__file__).parent / "fixture_suite" / "chaos_fixture_suite.py"
COMPOSE_FILE = ROOT / "docker-compose.toxiproxy.yml"
INNER_TIMEOUT_S = 240

# Written into the inner session's directory: at the end of the session, before the plugin
# stops its backend, list the containers this process owns (by the owner labels the backend
# puts on them), with their session label and the real server's log.
RECORD_CONTAINERS = f"""
import json
import os
import socket

import docker


def pytest_sessionfinish(session):
    client = docker.from_env()
    mine = client.containers.list(
        all=True,
        filters={{"label": ["{OWNER_PID_LABEL}=" + str(os.getpid()),
                            "{OWNER_HOST_LABEL}=" + socket.gethostname()]}},
    )
    record = [
        {{
            "id": container.id,
            "session": container.labels.get("{SESSION_LABEL}"),
            "tags": container.image.tags,
            "network": container.attrs["HostConfig"]["NetworkMode"],
            "status": container.status,
            "logs": container.logs().decode(errors="replace"),
        }}
        for container in mine
    ]
    with open("containers.json", "w") as out:
        json.dump(record, out)
    client.close()
"""


@pytest.fixture
def engine() -> Iterator[Any]:
    """The engine's Docker SDK client, with the image there; one container test at a time."""
    client = require_engine()
    try:
        require_image(client)
        with exclusive():
            yield client
    finally:
        client.close()


@pytest.fixture
def inner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *args, "-p", "no:cacheprovider", "-p", "no:randomly", timeout=INNER_TIMEOUT_S
    )


# -- the fixture suite on the container backend ---------------------------------------------


@pytest.mark.usefixtures("inner_env")
def test_fixture_suite_on_container(engine: Any, pytester: pytest.Pytester) -> None:
    """tests/proxy/test_fixture.py's suite, as it runs there, with ``--chaos-toxiproxy
    container``: every check holds against Toxiproxy 2.12 in a container, and the session
    leaves no container behind."""
    shutil.copy(SUITE, pytester.path / "test_fixture_suite.py")
    pytester.makeconftest(RECORD_CONTAINERS)
    result = run_inner(pytester, "--chaos-toxiproxy", "container", "-v")
    total = assert_fixture_suite_passed(result, "container")

    # during the session: one container of the image, on the host's network, which served
    # the suite's proxies (the real server's log says so)
    used = json.loads((pytester.path / "containers.json").read_text())
    assert len(used) == 1, used
    [container] = used
    assert IMAGE in container["tags"], container
    assert container["network"] == "host", container
    assert container["status"] == "running", container
    assert '"version":"2.12.0"' in container["logs"], container["logs"]
    assert container["logs"].count("Started proxy") >= total, container["logs"]

    # afterwards: no container of that session, running or not
    assert labelled(engine, f"{SESSION_LABEL}={container['session']}") == []


# -- docker-compose.toxiproxy.yml ---------------------------------------------------------------

COMPOSE_CHAOS_TEST = """
import os
import socket
import threading
import time

import httpx
import pytest


@pytest.fixture
def echo():
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield "127.0.0.1:%d" % server.getsockname()[1]
    server.close()


def round_trip(address):
    host, port = address.rsplit(":", 1)
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
    return time.monotonic() - start


@pytest.mark.chaos(weight=5, hypothesis="the echo answers within 1 s while the link is slow")
def test_echo_survives_latency(toxiproxy, echo):
    link = toxiproxy.proxy("echo", upstream=echo)
    # the proxy lives on the server that Compose started
    assert link.name in httpx.get(os.environ["COMPOSE_TOXIPROXY"] + "/proxies").json()
    with link.latency(ms=300, jitter=50):
        assert 0.25 <= round_trip(link.listen) < 1.0
    assert round_trip(link.listen) < 0.25
"""


def compose(command: list[str], env: dict[str, str], project: str, *args: str) -> str:
    """Run a Compose subcommand on the repository's file; its output, or fail with it."""
    argv = [*command, "-f", str(COMPOSE_FILE), "-p", project, *args]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180)
    output = f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, output
    return output


@pytest.mark.usefixtures("inner_env")
def test_compose_file_serves_the_plugin(
    engine: Any, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``docker-compose.toxiproxy.yml`` as docs/docker-compose.md says: ``up -d``, then a
    chaos test with ``--chaos-toxiproxy http://127.0.0.1:PORT``, then ``down``. The port is a
    free one, through the file's TOXIPROXY_PORT (default 8474), so that a Toxiproxy the
    developer already runs on 8474 is left alone."""
    command, env = require_compose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env["TOXIPROXY_PORT"] = str(port)
    project = f"pytest-chaos-test-{os.getpid()}"
    project_label = f"com.docker.compose.project={project}"
    up = compose(command, env, project, "up", "-d")
    try:
        try:
            wait_ready(url, f"the Compose service on port {port}")
        except BackendError as error:
            pytest.fail(f"{error}\n{up}", pytrace=False)
        assert httpx.get(url + "/version").json() == {"version": "2.12.0"}
        [container] = labelled(engine, project_label)
        assert IMAGE in container.image.tags
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert container.attrs["Config"]["Cmd"] == ["-host", "127.0.0.1", "-port", str(port)]

        pytester.makepyfile(test_compose_chaos=COMPOSE_CHAOS_TEST)
        monkeypatch.setenv("COMPOSE_TOXIPROXY", url)
        result = run_inner(pytester, "--chaos-toxiproxy", url)
        result.stdout.fnmatch_lines([f"chaos: seed=* toxiproxy={url}"])
        result.assert_outcomes(passed=1)
        # the plugin leaves a server it does not own running, with its proxies removed
        assert httpx.get(url + "/proxies").json() == {}
    finally:
        down = compose(command, env, project, "down")
    assert labelled(engine, project_label) == [], down
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/version", timeout=2)


# -- the sweep of a crashed session's containers --------------------------------------------

CRASHING_TEST = """
import os
import signal
from pathlib import Path


def test_crash(toxiproxy):
    toxiproxy.proxy("doomed", upstream="127.0.0.1:9")
    Path("owner.pid").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
"""

NEXT_SESSION_TEST = """
def test_next_session(toxiproxy):
    assert toxiproxy.version() == "2.12.0"
"""


@pytest.mark.usefixtures("inner_env")
def test_next_session_sweeps_a_crashed_sessions_container(
    engine: Any, pytester: pytest.Pytester
) -> None:
    """A session killed with SIGKILL leaves its container running; the next session of the
    container backend removes it, with a warning in its log, and leaves alone the
    containers whose owner may be alive or cannot be judged from here."""
    pytester.makepyfile(test_crash=CRASHING_TEST)
    crashed = run_inner(pytester, "--chaos-toxiproxy", "container")
    assert crashed.ret == -signal.SIGKILL, crashed.stdout.str() + crashed.stderr.str()
    dead_pid = int((pytester.path / "owner.pid").read_text())
    [leftover] = labelled(engine, f"{OWNER_PID_LABEL}={dead_pid}")
    assert leftover.status == "running"

    me = Owner.current()
    stand_ins = {
        # alive: this very process
        "live": {SESSION_LABEL: "test-live-owner", **me.labels()},
        # another host: its pid cannot be checked from here
        "foreign": {
            SESSION_LABEL: "test-foreign-owner",
            **Owner("elsewhere.invalid", "no-boot", dead_pid, "1").labels(),
        },
        # no owner labels (an older pytest-chaos): nothing to judge by
        "unowned": {SESSION_LABEL: "test-unowned"},
        # this process's pid, but another start time: the owner ended and the pid was reused
        "reused": {
            SESSION_LABEL: "test-reused-pid",
            **Owner(me.host, me.boot, me.pid, "1").labels(),
        },
    }
    created = {
        name: engine.containers.create(IMAGE, command=["-version"], labels=labels)
        for name, labels in stand_ins.items()
    }
    try:
        pytester.makepyfile(test_crash="")  # the crashing test must not run again
        pytester.makepyfile(test_next=NEXT_SESSION_TEST)
        swept = run_inner(
            pytester,
            "--chaos-toxiproxy",
            "container",
            "-o",
            "log_cli=true",
            "--log-cli-level=WARNING",
        )
        swept.assert_outcomes(passed=1)
        out = swept.stdout.str()
        for name in ("leftover", "reused"):
            short_id = leftover.short_id if name == "leftover" else created[name].short_id
            assert re.search(
                rf"removed container {short_id} of the dead pytest-chaos session \S+: "
                r"its owner, pid \d+ on \S+, (is not running|ended \(the pid was reused\))",
                out,
            ), (name, out)
        remaining = {container.id for container in labelled(engine, SESSION_LABEL)}
        assert leftover.id not in remaining
        assert created["reused"].id not in remaining
        for name in ("live", "foreign", "unowned"):
            assert created[name].id in remaining, name
    finally:
        for container in [leftover, *created.values()]:
            remove_quietly(container)


# -- start-up failures ------------------------------------------------------------------------

USES_TOXIPROXY = """
def test_uses_toxiproxy(toxiproxy):
    pass
"""


@pytest.mark.usefixtures("inner_env")
def test_missing_image_says_how_to_get_it(engine: Any, pytester: pytest.Pytester) -> None:
    """An image the engine does not have is pulled; when that fails, the test that asked for
    ``toxiproxy`` errors with the engine's pull error and how to get the image. (The image
    is on 127.0.0.1:1, where no registry listens: the pull fails at once, offline too.)"""
    image = "127.0.0.1:1/pytest-chaos/missing:0"
    pytester.makepyfile(test_uses=USES_TOXIPROXY)
    pytester.makeconftest(RECORD_CONTAINERS)
    result = run_inner(pytester, "--chaos-toxiproxy", f"container={image}")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert f"the image {image} is not on the engine and pulling it failed: " in out, out
    assert re.search(r"127\.0\.0\.1:1.*connection refused", out), out
    assert f"`docker pull {image}` or `podman pull {image}`" in out, out
    assert "docs/docker-compose.md" in out, out
    assert json.loads((pytester.path / "containers.json").read_text()) == []


@pytest.mark.usefixtures("inner_env")
def test_container_that_exits_is_reported_and_removed(
    engine: Any, pytester: pytest.Pytester
) -> None:
    """A container that exits before its API answers (here: the image's own toxiproxy-cli
    as entrypoint, which rejects the server's flags) fails the start at once with the
    container's log, and is removed then, not only when the session ends."""
    import io

    tag = f"localhost/pytest-chaos-test-exits:{os.getpid()}"
    dockerfile = f'FROM {IMAGE}\nENTRYPOINT ["/toxiproxy-cli"]\n'
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    try:
        pytester.makepyfile(test_uses=USES_TOXIPROXY)
        pytester.makeconftest(RECORD_CONTAINERS)
        result = run_inner(pytester, "--chaos-toxiproxy", f"container={tag}")
        result.assert_outcomes(errors=1)
        out = result.stdout.str()
        assert re.search(
            r"container \S+ exited before answering at http://127\.0\.0\.1:\d+: "
            r"container \w+ exited; output: .*flag provided but not defined: -port",
            out,
        ), out
        # gone before the end of the session
        assert json.loads((pytester.path / "containers.json").read_text()) == []
    finally:
        engine.images.remove(tag, force=True)


@pytest.mark.usefixtures("inner_env")
def test_without_the_docker_sdk_says_what_to_install(pytester: pytest.Pytester) -> None:
    """No engine needed: without the Docker SDK (here hidden from the inner session), the
    test that asks for ``toxiproxy`` errors saying what to install, and the session ends
    cleanly (nothing to stop)."""
    pytester.makeconftest("import sys\nsys.modules['docker'] = None  # import docker fails\n")
    pytester.makepyfile(test_uses=USES_TOXIPROXY)
    result = run_inner(pytester, "--chaos-toxiproxy", "container")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert (
        "--chaos-toxiproxy: the container backend needs the Docker SDK: "
        "pip install 'pytest-chaos[docker]'"
    ) in out, out
    # nothing went wrong at the end of the session (where the backends stop)
    assert result.stderr.str().strip() == "", result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
