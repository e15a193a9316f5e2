"""Process groups as the services and game days need them: signalled as a whole, and
waited for until no member is left. (The session's supervisor starts the services', each
leading a session and process group of its own: :mod:`pytest_chaos.leftovers.supervisor`.)

Each service process also carries a marker in its environment (``PYTEST_CHAOS_SERVICE``),
which its children inherit: on Linux, a child that left the process group (a daemon that
called ``setsid``) is still found by it, signalled with the rest, and killed at teardown.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from pytest_chaos.leftovers.identity import process_state as state

MARKER = "PYTEST_CHAOS_SERVICE"
"""The environment variable that marks every process a service or a hog starts; its value
(see :func:`marker`) begins with the id of the test process that started it."""

_PROC = Path("/proc")
_LINUX = sys.platform.startswith("linux")


def marker(name: str) -> str:
    """A new marker value: ``<pid of this test process>:<random token>:<name>``."""
    return f"{os.getpid()}:{uuid.uuid4().hex[:12]}:{name}"


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
    for pid, letter, group in _processes():
        if letter == "Z":
            continue
        if group == pgid:
            in_group.append(pid)
        elif needle is not None and needle in b"\0" + _environ(pid):
            outside.append(pid)
    return in_group, outside


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


__all__ = ["MARKER", "marker", "members", "signal_all", "state", "wait_until"]
