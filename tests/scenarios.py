"""Runs of pytest that go wrong on purpose, and the count of what they leave behind.

An inner pytest run starts everything a chaos run can leave (:data:`WORLD_CONFTEST`): a
paused service tree with a daemonized grandchild, a service that ignores SIGTERM, a memory
hog, a disk fill, two proxies with toxics and a toxic on a proxy it did not create. It
writes what it made into a marker file, and the outer test waits for that file (an event,
never a fixed sleep) before it breaks the run. Every process the inner run starts carries
a token in its environment, so that :func:`count_leftovers` finds them whatever became of
their parents.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from .services.helpers import APP

TOKEN_VARIABLE = "PYTEST_CHAOS_SCENARIO"
"""The environment variable that marks every process of an inner run."""

WORLD_CONFTEST = """
import json, os, pathlib, sys
import pytest
from pytest_chaos import probes
from pytest_chaos.plugin.session import chaos_session

APP = [sys.executable, {app!r}, "--port", "{{port}}"]
MARKER = pathlib.Path({marker!r})
FILL_DIR = {fill_dir!r}
TEARDOWN_TIMEOUT = {teardown_timeout!r}
STUBBORN_STOP_S = {stubborn_stop!r}


@pytest.fixture(scope="session")
def shared(toxiproxy_session):
    try:
        return toxiproxy_session["shared"]  # made by the server's owner (a URL backend)
    except Exception:
        return toxiproxy_session.proxy("shared", upstream="127.0.0.1:9")


@pytest.fixture
def world(request, toxiproxy, shared, service):
    # toxiproxy first: torn down last, after the services
    web = service.process("web", APP + ["--child", "--escapee"], ready=probes.http("/health"))
    stubborn = service.process(
        "stubborn", APP + ["--ignore-term"], ready=probes.http("/health"), stop_timeout=STUBBORN_STOP_S
    )
    service.memory_hog(8, seconds=600)
    fill = service.disk_fill(FILL_DIR, 1)
    a = toxiproxy.proxy("a", upstream=web.address)
    a.latency(10)
    b = toxiproxy.proxy("b", upstream=stubborn.address)
    b.timeout(0)
    toxiproxy["shared"].bandwidth(1)
    web.pause()
    session = chaos_session(request.config)
    ports = [web.port, stubborn.port, a.port, b.port]
    if session.settings.toxiproxy.kind == "embedded":  # the run's own server
        ports.append(int(toxiproxy.url.rpartition(":")[2]))
    made = {{
        "pytest": os.getpid(),
        "supervisor": session.supervisor.pid,
        "ports": ports,
        "stubborn_log": str(stubborn.log_path),
        "fill": str(fill.file),
    }}
    partial = MARKER.with_suffix(".partial")
    partial.write_text(json.dumps(made))
    partial.rename(MARKER)  # whole, or not there yet
    yield


if TEARDOWN_TIMEOUT is not None:
    import pytest_timeout

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(item):
        # pytest-timeout's own timer, for the teardown alone
        seconds, method = TEARDOWN_TIMEOUT
        settings = pytest_timeout.Settings(seconds, method, True, False)
        item.config.hook.pytest_timeout_set_timer(item=item, settings=settings)
        try:
            return (yield)
        finally:
            item.config.hook.pytest_timeout_cancel_timer(item=item)
"""

BODIES = {
    "block": "import time\n\ndef test_world(world):\n    time.sleep(3600)\n",
    "fail": 'def test_world(world):\n    assert False, "the system under test broke"\n',
    "pass": "def test_world(world):\n    pass\n",
    "crash": (
        "import os, signal\n\ndef test_world(world):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    ),
}


@dataclass
class Leftovers:
    """What an inner run left: each list must be empty."""

    processes: list[str] = field(default_factory=list)
    listening: list[int] = field(default_factory=list)
    proxies: list[str] = field(default_factory=list)
    toxics: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(value) for name, value in vars(self).items()}


class InnerRun:
    """A pytest subprocess in a session of its own, its output read in the background."""

    def __init__(self, process: subprocess.Popen[bytes], marker: Path) -> None:
        self.process = process
        self.marker = marker
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._lines.put(raw.decode(errors="replace"))
        self._lines.put(None)

    def made(self, timeout: float = 180) -> dict[str, Any]:
        """What the inner run made, once it has made all of it."""
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.finish(timeout=30)
                raise AssertionError(
                    "the inner run did not get to make its world:\n" + "".join(self.output)
                )
            time.sleep(0.02)
        made: dict[str, Any] = json.loads(self.marker.read_text())
        return made

    def finish(self, timeout: float = 180) -> tuple[int, str]:
        """Its exit code and whole output, once it has ended."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError("the inner run is stuck:\n" + "".join(self.output)) from None
            if line is None:
                break
            self.output.append(line)
        return self.process.wait(max(deadline - time.monotonic(), 1)), "".join(self.output)


@dataclass
class Scene:
    """Where an inner run happens: its files, its temporary directory, its token."""

    root: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def marker(self) -> Path:
        return self.root / "made.json"

    @property
    def fill_dir(self) -> Path:
        return self.root / "fill"

    @property
    def tmpdir(self) -> Path:
        return self.root / "tmp"

    @property
    def basetemp(self) -> Path:
        return self.root / "basetemp"


@contextmanager
def inner_run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    scene: Scene,
    body: str,
    *args: str,
    teardown_timeout: tuple[float, str] | None = None,
    stubborn_stop: float = 1.0,
) -> Iterator[InnerRun]:
    """Start the world suite with ``body`` as its test; killed on exit if still running.
    ``stubborn_stop`` is how long teardown waits for the service that ignores SIGTERM."""
    for folder in (scene.fill_dir, scene.tmpdir):
        folder.mkdir(parents=True, exist_ok=True)
    scene.marker.unlink(missing_ok=True)
    pytester.makeconftest(
        WORLD_CONFTEST.format(
            app=APP,
            marker=str(scene.marker),
            fill_dir=str(scene.fill_dir),
            teardown_timeout=teardown_timeout,
            stubborn_stop=stubborn_stop,
        )
    )
    pytester.makepyfile(test_world=BODIES[body])
    monkeypatch.setenv(TOKEN_VARIABLE, scene.token)
    monkeypatch.setenv("TMPDIR", str(scene.tmpdir))
    process = pytester.popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--basetemp={scene.basetemp}",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield InnerRun(process, scene.marker)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_for_exit(pid: int | None, timeout: float = 120) -> None:
    """Wait for a process that is not our child to exit (a zombie has exited)."""
    if pid is None:
        return
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    assert ready, f"process {pid} still running {timeout} s later"


def count_leftovers(scene: Scene, made: dict[str, Any], url: str | None) -> Leftovers:
    """Everything of the inner run that is still there: its processes (by token), the
    ports it listened on, its proxies and toxics on the server at ``url`` (a URL backend,
    whose proxy ``shared`` is not the run's), and the files in its fill folder and its
    temporary directory."""
    left = Leftovers()
    left.processes = _processes_with(f"{TOKEN_VARIABLE}={scene.token}")
    left.listening = [port for port in made["ports"] if _accepts(port)]
    if url is not None:
        state = httpx.get(url + "/proxies", timeout=10).json()
        left.proxies = [name for name in state if name != "shared"]
        left.toxics = [toxic["name"] for toxic in state.get("shared", {}).get("toxics", [])]
        if not state.get("shared", {}).get("enabled", True):
            left.proxies.append("shared (disabled)")
    left.files = [
        str(path)
        for folder in (scene.fill_dir, scene.tmpdir)
        for path in folder.rglob("*")
        if path.is_file() or path.is_symlink()
    ]
    return left


def kill_processes_of(scene: Scene) -> None:
    """After the counting: SIGKILL whatever of the inner run still runs (a failing test
    must not leak processes into the next)."""
    for found in _processes_with(f"{TOKEN_VARIABLE}={scene.token}"):
        try:
            os.kill(int(found.partition(":")[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _processes_with(variable: str) -> list[str]:
    """``pid: command line`` of every live process whose environment holds ``variable``."""
    needle = b"\0" + variable.encode() + b"\0"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
            stat = Path(entry.path, "stat").read_bytes()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if needle in b"\0" + environ and stat[stat.rindex(b")") + 2 :].split()[0] != b"Z":
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command[:120]}")
    return found


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True
