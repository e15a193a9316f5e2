"""The feed: how a child session that makes a round of runs tells the session that
explores about them, as they happen.

The child writes one JSON object a line to a pipe it inherited (``--chaos-explore-feed
FD``): the events the exploring session replays into its own hooks, as pytest-xdist's
controller replays its workers'. Test reports travel in pytest's own serializable form.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, final

from pytest_chaos.core.errors import ChaosError

Event = Mapping[str, Any]


@final
class FeedWriter:
    """The child's end: events written as they happen, each flushed at once."""

    def __init__(self, fd: int) -> None:
        self._out: IO[str] = os.fdopen(fd, "w", encoding="utf-8", closefd=True)

    def send(self, event: str, **data: Any) -> None:
        self._out.write(json.dumps({"event": event, **data}, default=str) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()


class ChildFailed(ChaosError, RuntimeError):
    """A child session ended without running its round (a usage or internal error)."""


def run_child(
    argv: Sequence[str],
    *,
    log: Path,
    on_event: Callable[[Event], None],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    grace_s: float = 30.0,
) -> int:
    """Run ``argv`` (a pytest command line, to which ``--chaos-explore-feed FD`` is added)
    with its output in ``log``; call ``on_event`` for each event it sends; return its exit
    status. Interrupted, the child is interrupted too (SIGINT, as Ctrl-C would), so that
    its teardown stops what its runs started; killed only if it is still there after
    ``grace_s``."""
    read_end, write_end = os.pipe()
    with log.open("ab") as output:
        try:
            process = subprocess.Popen(
                [*argv, "--chaos-explore-feed", str(write_end)],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=(write_end,),
                env=None if env is None else dict(env),
                cwd=cwd,
                preexec_fn=_interrupted_when_orphaned if sys.platform == "linux" else None,
            )
        finally:
            os.close(write_end)
        try:
            with os.fdopen(read_end, encoding="utf-8") as feed:
                for line in feed:
                    if line.strip():
                        on_event(json.loads(line))
            return process.wait()
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(grace_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _interrupted_when_orphaned() -> None:
    """In the child, before it runs (Linux): a SIGINT when the exploring session dies, so
    that even then its runs are torn down (``PR_SET_PDEATHSIG``)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGINT)
