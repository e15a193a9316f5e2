"""The feed: how a child session that makes a round of runs tells the session that
explores about them, as they happen.

The child writes one JSON object a line to a pipe it inherited (``--chaos-explore-feed
FD``): the events the exploring session replays into its own hooks, as pytest-xdist's
controller replays its workers'. Test reports travel in pytest's own serializable form.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

Event = Mapping[str, Any]


class FeedWriter:
    """The child's end: events written as they happen, each flushed at once."""

    def __init__(self, fd: int) -> None:
        self._out: IO[str] = os.fdopen(fd, "w", encoding="utf-8", closefd=True)

    def send(self, event: str, **data: Any) -> None:
        self._out.write(json.dumps({"event": event, **data}, default=str) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()


class ChildFailed(RuntimeError):
    """A child session ended without running its round (a usage or internal error)."""


def run_child(
    argv: Sequence[str],
    *,
    log: Path,
    on_event: Callable[[Event], None],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> int:
    """Run ``argv`` (a pytest command line, to which ``--chaos-explore-feed FD`` is added)
    with its output in ``log``; call ``on_event`` for each event it sends; return its exit
    status. The child is killed if this is interrupted."""
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
                process.kill()
                process.wait()
