"""Nothing outlives an exploring session that dies: its round, orphaned, is interrupted
(SIGINT, as Ctrl-C would), and its teardown stops what the run started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .sessions import environment

TEST = """
import os
import sys
import time

from pytest_chaos import probes


def test_waits(service, tmp_path):
    sleeper = service.process(
        "sleeper",
        [sys.executable, "-u", "-c", "print('ready', flush=True); import time; time.sleep(600)"],
        ready=probes.log("ready"),
    )
    with open(os.environ["PID_FILE"], "w") as out:
        out.write(str(sleeper.pid))
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def started_in(folder: Path) -> list[int]:
    """The processes whose command line names ``folder`` (a round's session does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(folder) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_round_outliving_its_session_is_torn_down(tmp_path: Path) -> None:
    (tmp_path / "test_waits.py").write_text(TEST)
    pid_file = tmp_path / "sleeper.pid"
    env = {**environment(), "PID_FILE": str(pid_file)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--chaos-explore"]
    explorer = subprocess.Popen(
        [*command, "--chaos-explore-timeout", "600", "test_waits.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the baseline never started its service"
            assert explorer.poll() is None, "the exploring session ended on its own"
            time.sleep(0.1)
        sleeper = int(pid_file.read_text())
        assert alive(sleeper)
        explorer.send_signal(signal.SIGKILL)
        explorer.wait(10)
        deadline = time.monotonic() + 60
        while alive(sleeper):
            assert time.monotonic() < deadline, f"process {sleeper} outlived the exploration"
            time.sleep(0.1)
    finally:
        if explorer.poll() is None:
            explorer.kill()
            explorer.wait()
        for left in [
            *started_in(tmp_path),
            *([int(pid_file.read_text())] if pid_file.exists() and pid_file.read_text() else []),
        ]:
            if alive(left):
                os.kill(left, signal.SIGKILL)  # what a failure left behind
