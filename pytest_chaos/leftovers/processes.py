"""The processes of dead runs: every process the supervisor starts carries the run's
identity in its environment (``PYTEST_CHAOS_RUN``), which its children inherit, daemons
included. Should a run and its supervisor both be killed at once (``kill -9`` of both, the
OOM killer), the next run finds what they left by it, and kills it. Linux only (it reads
``/proc``). Standard library only (the supervisor process imports it).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

RUN_VARIABLE = "PYTEST_CHAOS_RUN"
"""The environment variable that holds the identity suffix of the run that started it."""


def sweep(doomed: Callable[[str], bool]) -> list[int]:
    """SIGKILL every process (stopped ones too) whose run identity is ``doomed``;
    return their pids."""
    needle = f"{RUN_VARIABLE}=".encode()
    killed: list[int] = []
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return killed
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        for variable in variables:
            if variable.startswith(needle) and doomed(variable[len(needle) :].decode()):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    pass
                break
    return killed
