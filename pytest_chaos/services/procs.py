"""Process groups as the services need them: started in a session of their own, signalled
as a whole, and waited for until no member is left.

Each service process also carries a marker in its environment (``PYTEST_CHAOS_SERVICE``),
which its children inherit: on Linux, a child that left the process group (a daemon that
called ``setsid``) is still found by it, signalled with the rest, and killed at teardown.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from ..proxy.backends import _die_with_parent

MARKER = "PYTEST_CHAOS_SERVICE"
"""The environment variable that marks every process a service or a hog starts; its value
(see :func:`marker`) begins with the id of the test process that started it."""

_PROC = Path("/proc")
_LINUX = sys.platform.startswith("linux")


def marker(name: str) -> str:
    """A new marker value: ``<pid of this test process>:<random token>:<name>``."""
    return f"{os.getpid()}:{uuid.uuid4().hex[:12]}:{name}"


def spawn(
    argv: Sequence[str],
    *,
    stdout: IO[bytes] | int,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session and process group, stdout and stderr
    both to ``stdout`` (a file, or ``subprocess.PIPE``); on Linux it gets SIGTERM if the
    test process dies. Raises OSError when it cannot start.

    Linux sends that signal when the *thread* that started the child ends, so a start asked
    for from another thread (an experiment's conductor restarting a killed service) is
    made by one long-lived spawner thread instead."""
    start = functools.partial(_popen, list(argv), stdout, env, cwd)
    if not _LINUX or threading.current_thread() is threading.main_thread():
        return start()
    return _spawner().submit(start).result()


def _popen(
    argv: list[str], stdout: IO[bytes] | int, env: Mapping[str, str] | None, cwd: Path | None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        env=None if env is None else dict(env),
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent(os.getpid()) if _LINUX else None,
    )


_SPAWNERS: list[ThreadPoolExecutor] = []
_SPAWNERS_LOCK = threading.Lock()


def _spawner() -> ThreadPoolExecutor:
    """The thread that starts the processes other threads ask for; it lives as long as
    the test process (an idle pool thread waits for work, it does not end)."""
    with _SPAWNERS_LOCK:
        if not _SPAWNERS:
            _SPAWNERS.append(ThreadPoolExecutor(1, thread_name_prefix="pytest-chaos-spawner"))
        return _SPAWNERS[0]


def members(pgid: int, marker: str | None = None) -> list[int]:
    """The live processes (zombies do not count) of group ``pgid``, and on Linux also those
    whose environment carries ``MARKER=marker``."""
    in_group, outside = _scan(pgid, marker)
    return in_group + outside


def signal_all(pgid: int, marker: str | None, sig: int) -> None:
    """Send ``sig`` to the group ``pgid`` and to each marked process outside it, once each;
    what is gone already is no error."""
    _, outside = _scan(pgid, marker)
    for send, target in [(os.killpg, pgid)] + [(os.kill, pid) for pid in outside]:
        try:
            send(target, sig)
        except ProcessLookupError:
            pass


def _scan(pgid: int, marker: str | None) -> tuple[list[int], list[int]]:
    """The live members of group ``pgid``, and the live marked processes outside it."""
    if not _LINUX:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return [], []
        except PermissionError:
            pass
        return [pgid], []
    needle = b"\0" + f"{MARKER}={marker}".encode() + b"\0" if marker else None
    in_group: list[int] = []
    outside: list[int] = []
    for pid, state, group in _processes():
        if state == "Z":
            continue
        if group == pgid:
            in_group.append(pid)
        elif needle is not None and needle in b"\0" + _environ(pid):
            outside.append(pid)
    return in_group, outside


def state(pid: int) -> str | None:
    """The scheduler state letter of ``pid`` (``R``, ``S``, ``T`` for stopped, ``Z``...), or
    None when it is gone or the platform has no ``/proc``."""
    try:
        stat = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[0].decode()


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
        interval = min(interval * 2, 0.1)
    return True


def _processes() -> Iterator[tuple[int, str, int]]:
    """Every process as (pid, state, process group), read from ``/proc``."""
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        yield int(entry.name), fields[0].decode(), int(fields[2])


def _environ(pid: int) -> bytes:
    try:
        return (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return b""


__all__ = ["MARKER", "marker", "members", "signal_all", "spawn", "state", "wait_until"]
