"""Every row of docs/when-things-go-wrong.md, run for real: a pytest run holding a paused
service tree (with a daemonized grandchild), a service that ignores SIGTERM, a memory hog,
a disk fill, two proxies with toxics and a toxic on a proxy it did not create, broken the
way the row says, with real signals; on the embedded backend and on a real Toxiproxy as a
URL backend. Each asserts that nothing is left: no process, no listening port, no proxy,
no toxic, no file."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .scenarios import (
    InnerRun,
    Scene,
    count_leftovers,
    inner_run,
    kill_processes_of,
    wait_for_exit,
)
from .servers import ApiServer, isolate_chaos_env

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, pidfds"),
    pytest.mark.usefixtures("isolated_env"),
]

NOTHING = {"processes": 0, "listening": 0, "proxies": 0, "toxics": 0, "files": 0}


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)


Stop = Callable[[InnerRun, dict[str, Any]], None]


def ctrl_c(run: InnerRun, made: dict[str, Any]) -> None:
    """Ctrl-C in a terminal: SIGINT to pytest's process group."""
    os.killpg(run.process.pid, signal.SIGINT)


def ctrl_c_twice(run: InnerRun, made: dict[str, Any]) -> None:
    """Ctrl-C, and again 0.6 s later, once teardown is waiting for the service that
    ignores SIGTERM (so that the second one interrupts the teardown)."""
    os.killpg(run.process.pid, signal.SIGINT)
    first = time.monotonic()
    log = Path(made["stubborn_log"])
    deadline = first + 120
    while "ignored SIGTERM" not in log.read_text():
        assert time.monotonic() < deadline, "teardown never reached the stubborn service"
        time.sleep(0.02)
    time.sleep(max(0.0, 0.6 - (time.monotonic() - first)))  # the row's 0.6 s
    os.killpg(run.process.pid, signal.SIGINT)


def send(sig: signal.Signals) -> Stop:
    def stop(run: InnerRun, made: dict[str, Any]) -> None:
        os.kill(made["pytest"], sig)

    return stop


@dataclass(frozen=True)
class Row:
    body: str
    exit: int
    args: tuple[str, ...] = ()
    stop: Stop | None = None
    teardown_timeout: tuple[float, str] | None = None
    #: how long teardown waits for the service that ignores SIGTERM: for ever, where the
    #: row interrupts that wait
    stubborn_stop: float = 1.0


CALL_TIMEOUT = ("--timeout=3", "-o", "timeout_func_only=true")
ROWS = {
    "failure": Row("fail", 1),
    "ctrl-c": Row("block", 2, stop=ctrl_c),
    "ctrl-c-twice": Row("block", -signal.SIGINT, stop=ctrl_c_twice, stubborn_stop=3600),
    "timeout-signal": Row("block", 1, (*CALL_TIMEOUT, "--timeout-method=signal")),
    "timeout-thread": Row("block", 1, (*CALL_TIMEOUT, "--timeout-method=thread")),
    "sigterm": Row("block", -signal.SIGTERM, stop=send(signal.SIGTERM)),
    "sigkill": Row("block", -signal.SIGKILL, stop=send(signal.SIGKILL)),
    "teardown-timeout-signal": Row("pass", 1, teardown_timeout=(3, "signal"), stubborn_stop=3600),
    "teardown-timeout-thread": Row("pass", 1, teardown_timeout=(3, "thread"), stubborn_stop=3600),
    "xdist-worker-crash": Row("crash", 1, ("-n", "1", "--max-worker-restart=0")),
}


@pytest.fixture(params=["embedded", "url"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[list[str], str | None]]:
    """The inner run's --chaos-toxiproxy, and the URL of a server it does not own: a real
    Toxiproxy with a proxy ``shared`` of its own configuration."""
    if request.param == "embedded":
        yield [], None
        return
    request.applymarker(pytest.mark.realserver)
    server: ApiServer = request.getfixturevalue("real_server")
    server.clear()
    httpx.post(
        server.url + "/proxies", json={"name": "shared", "upstream": "127.0.0.1:9"}, timeout=10
    ).raise_for_status()
    yield [f"--chaos-toxiproxy={server.url}"], server.url
    server.clear()


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    """Where the inner run happens; whatever of it still runs is killed afterwards."""
    made = Scene(tmp_path / "scene")
    yield made
    kill_processes_of(made)


@pytest.mark.parametrize("row", ROWS)
def test_nothing_is_left(
    row: str,
    backend: tuple[list[str], str | None],
    scene: Scene,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    how = ROWS[row]
    args, url = backend
    with inner_run(
        pytester,
        monkeypatch,
        scene,
        how.body,
        *args,
        *how.args,
        teardown_timeout=how.teardown_timeout,
        stubborn_stop=how.stubborn_stop,
    ) as run:
        made = run.made()
        if how.stop is not None:
            how.stop(run, made)
        code, output = run.finish()
    assert code == how.exit, output
    wait_for_exit(made["supervisor"])  # it ends what the run left, then itself
    left = count_leftovers(scene, made, url)
    assert left.counts() == NOTHING, f"{left}\n{output}"
    if row == "ctrl-c":
        assert "chaos teardown could not undo" not in output, output


def test_the_next_run_sweeps_a_run_killed_with_its_supervisor(
    real_server: ApiServer,
    scene: Scene,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should a run and its supervisor both be killed (``kill -9`` of both), the next run
    on the same machine removes what they left: the proxies and toxics on the shared
    server, the disk fill file, the processes that outlived them; it says so in one line,
    and its own tests pass."""
    real_server.clear()
    httpx.post(
        real_server.url + "/proxies", json={"name": "shared", "upstream": "127.0.0.1:9"}
    ).raise_for_status()
    target = f"--chaos-toxiproxy={real_server.url}"
    with inner_run(pytester, monkeypatch, scene, "block", target) as run:
        made = run.made()
        os.kill(made["supervisor"], signal.SIGKILL)
        wait_for_exit(made["supervisor"])
        os.kill(made["pytest"], signal.SIGKILL)
        code, output = run.finish()
    assert code == -signal.SIGKILL, output
    left = count_leftovers(scene, made, real_server.url)
    # the supervisor's children died with it; the grandchildren of ``web`` did not
    assert (len(left.processes), len(left.proxies), len(left.toxics)) == (2, 2, 1), left
    assert made["fill"] in left.files, left
    pytester.makepyfile(
        test_world="def test_next(toxiproxy):\n    toxiproxy.proxy('a', upstream='127.0.0.1:9')\n"
    )
    result = pytester.runpytest_subprocess(target, "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"chaos: removed what dead runs (pid {made['pytest']} on *) left: 2 proxies and "
            f"3 toxics at {real_server.url}; 1 disk fill file; 2 processes"
        ]
    )
    assert count_leftovers(scene, made, real_server.url).counts() == NOTHING
    real_server.clear()
