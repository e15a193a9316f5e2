"""The session's supervisor with real processes, signals and a real Toxiproxy: it starts
processes and reports how they ended, adopts the daemons they start, and ends every one of
them, with the run's proxies and toxics, when the session closes or dies."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.leftovers import register
from pytest_chaos.leftovers.identity import process_state
from pytest_chaos.leftovers.processes import RUN_VARIABLE
from pytest_chaos.leftovers.supervisor import Supervisor, SupervisorError

from ..scenarios import wait_for_exit
from ..servers import ApiServer

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a subreaper, pidfds and /proc are Linux's"
)

#: Prints its pid, starts a daemon (double fork, setsid) that prints its own, and sleeps.
DAEMONIZING = textwrap.dedent(
    """
    import os, sys, time
    print(os.getpid(), flush=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            print(os.getpid(), flush=True)
            time.sleep(600)
        os._exit(0)
    time.sleep(600)
    """
)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    made = Supervisor(folder=tmp_path / "register")
    yield made
    made.close()


def gone(pid: int) -> bool:
    return process_state(pid) in (None, "Z")


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def spawn_daemonizing(supervisor: Supervisor) -> tuple[int, int]:
    """Start DAEMONIZING; its pid and its daemon's, read from its output."""
    read, write = os.pipe()
    with os.fdopen(read, "rb") as output:
        try:
            supervisor.spawn([sys.executable, "-c", DAEMONIZING], stdout=write)
        finally:
            os.close(write)
        return int(output.readline()), int(output.readline())


def test_it_starts_processes_and_says_how_they_ended(supervisor: Supervisor) -> None:
    read, write = os.pipe()
    env = {**os.environ, "GREETING": "hello"}
    with os.fdopen(read, "rb") as output:
        try:
            process = supervisor.spawn(
                [sys.executable, "-c", "import os; print(os.environ['GREETING'], os.getpgid(0))"],
                stdout=write,
                env=env,
            )
        finally:
            os.close(write)
        assert process.wait(60) == 0
        greeting, group = output.read().split()
    assert greeting == b"hello"
    assert int(group) == process.pid  # it leads a process group of its own
    assert parent_of(supervisor.pid or 0) == os.getpid()
    sleeper = supervisor.spawn([sys.executable, "-c", "import time; time.sleep(60)"], stdout=2)
    assert sleeper.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        sleeper.wait(0.05)
    sleeper.kill()
    assert sleeper.wait(60) == -signal.SIGKILL


def test_its_processes_carry_the_run_identity(supervisor: Supervisor) -> None:
    read, write = os.pipe()
    with os.fdopen(read, "rb") as output:
        try:
            script = f"import os; print(os.environ[{RUN_VARIABLE!r}])"
            supervisor.spawn([sys.executable, "-c", script], stdout=write).wait(60)
        finally:
            os.close(write)
        assert output.read().decode().strip() == supervisor.identity.suffix


def test_a_program_that_cannot_start_is_an_os_error(supervisor: Supervisor) -> None:
    with pytest.raises(FileNotFoundError) as raised:
        supervisor.spawn(["/no/such/program"], stdout=2)
    assert raised.value.errno == errno.ENOENT and raised.value.filename == "/no/such/program"


def test_a_large_environment_gets_through(supervisor: Supervisor) -> None:
    read, write = os.pipe()
    env = {**os.environ, **{f"BIG{number}": "x" * 50_000 for number in range(4)}}
    with os.fdopen(read, "rb") as output:
        try:
            script = "import os; print(sum(len(os.environ[f'BIG{n}']) for n in range(4)))"
            supervisor.spawn([sys.executable, "-c", script], stdout=write, env=env).wait(60)
        finally:
            os.close(write)
        assert output.read().strip() == b"200000"


def test_daemons_are_adopted_and_ended_with_the_session(supervisor: Supervisor) -> None:
    main, daemon = spawn_daemonizing(supervisor)
    assert parent_of(daemon) == supervisor.pid  # adopted, not init's
    os.kill(main, signal.SIGSTOP)  # a stopped tree too
    os.kill(daemon, signal.SIGSTOP)
    folder = supervisor.folder
    assert register.runs(folder) == [supervisor.identity.suffix]
    pid = supervisor.pid
    supervisor.close()
    wait_for_exit(pid)
    assert gone(main) and gone(daemon)
    assert register.runs(folder) == []


def test_everything_ends_when_the_test_process_is_killed(tmp_path: Path) -> None:
    """A process with a supervisor, a stopped child and a daemon, SIGKILLed."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from pytest_chaos.leftovers.supervisor import Supervisor

        supervisor = Supervisor(folder=Path({str(tmp_path / "register")!r}))
        read, write = os.pipe()
        supervisor.spawn([sys.executable, "-c", {DAEMONIZING!r}], stdout=write)
        os.close(write)
        output = os.fdopen(read, "rb")
        main, daemon = int(output.readline()), int(output.readline())
        os.killpg(main, signal.SIGSTOP)
        print(supervisor.pid, main, daemon, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    supervisor, main, daemon = (int(pid) for pid in killed.stdout.split())
    wait_for_exit(supervisor)
    assert gone(main) and gone(daemon)
    assert register.runs(tmp_path / "register") == []


def test_sigterm_to_the_supervisor_ends_everything(supervisor: Supervisor) -> None:
    main, daemon = spawn_daemonizing(supervisor)
    pid = supervisor.pid or 0
    os.kill(pid, signal.SIGTERM)
    wait_for_exit(pid)
    assert gone(main) and gone(daemon)


def test_a_killed_supervisor_takes_its_children_and_says_so(supervisor: Supervisor) -> None:
    sleeper = supervisor.spawn([sys.executable, "-c", "import time; time.sleep(600)"], stdout=2)
    pid = supervisor.pid or 0
    os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid)
    assert wait_for_gone(sleeper.pid)
    with pytest.raises(SupervisorError, match=rf"the session's supervisor \(pid {pid}\) ended"):
        sleeper.poll()


def wait_for_gone(pid: int) -> bool:
    from pytest_chaos._net.processes import wait_until

    return wait_until(lambda: gone(pid), 60)


def test_closing_removes_the_run_s_proxies_and_toxics(
    supervisor: Supervisor, real_server: ApiServer
) -> None:
    real_server.clear()
    mine, theirs = supervisor.identity.tag("db"), "shared"
    with real_server.client() as http:
        for name in (mine, theirs):
            http.post("/proxies", json={"name": name, "upstream": "127.0.0.1:9"}).raise_for_status()
            for toxic in (supervisor.identity.tag("slow"), "kept"):
                body = {"name": toxic, "type": "latency", "attributes": {"latency": 1}}
                http.post(f"/proxies/{name}/toxics", json=body).raise_for_status()
        supervisor.watch(real_server.url)
        supervisor.close()
        state = http.get("/proxies").json()
    assert list(state) == ["shared"]
    assert [toxic["name"] for toxic in state["shared"]["toxics"]] == ["kept"]
    real_server.clear()


def test_it_removes_the_run_s_fill_files(supervisor: Supervisor, tmp_path: Path) -> None:
    file = tmp_path / "pytest-chaos-fill-test.bin"
    supervisor.start()
    entry = register.enter_fill(file, supervisor.identity.suffix, supervisor.folder)
    file.write_bytes(b"x" * 4096)
    other = tmp_path / "pytest-chaos-fill-other.bin"
    register.enter_fill(other, ".pytest-chaos.elsewhere.00000000.1.1", supervisor.folder)
    other.write_bytes(b"y")
    assert entry is not None and entry.is_symlink()
    supervisor.close()
    assert not file.exists() and not entry.is_symlink()
    assert other.exists()  # another run's
