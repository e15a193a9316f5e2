"""The per-run timeout: a run still going after it is *hung*, and the stack of the test's
thread at that moment says where.

A watchdog thread waits out the timeout, takes the stack of the thread running the test,
then sends that thread SIGUSR2; the handler raises :class:`Hung` there, which interrupts a
blocking call (a socket read with no timeout, a lock, a sleep) as a signal does. ``Hung``
is not an ``Exception``, so code under test that catches every error does not swallow it.
The test's thread must be the main one (as under pytest and pytest-xdist); elsewhere, or
where signals cannot be sent, the run simply has no timeout.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import threading
import traceback
from types import FrameType, TracebackType
from typing import Any, final

from pytest_chaos.core.errors import ChaosInterrupt

SIGNAL = getattr(signal, "SIGUSR2", None)
#: Stack frames from these trees are the machinery (Python, pytest, this package), not
#: the code under test: ``where`` points at the deepest frame outside them.
_MACHINERY = (
    sysconfig.get_paths()["stdlib"],
    sysconfig.get_paths()["purelib"],
    sysconfig.get_paths()["platlib"],
)


class Hung(ChaosInterrupt):
    """Raised in the test's thread when its run outlives the timeout; ``where`` is the
    frame it was stuck in, ``stack`` every thread's stack at that moment."""

    def __init__(self, timeout_s: float, where: str, stack: str) -> None:
        super().__init__(f"still running after {timeout_s:g} s; stuck at {where}")
        self.timeout_s = timeout_s
        self.where = where
        self.stack = stack


@final
class Watchdog:
    """``with Watchdog(seconds):`` raises :class:`Hung` in this thread if the block is
    still running after ``seconds``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._target = threading.get_ident()
        self._done = threading.Event()
        self._armed = False
        self._hung: Hung | None = None
        self._thread: threading.Thread | None = None
        self._previous: Any = None

    @property
    def supported(self) -> bool:
        return (
            SIGNAL is not None
            and hasattr(signal, "pthread_kill")
            and threading.current_thread() is threading.main_thread()
        )

    def __enter__(self) -> Watchdog:
        if not self.supported or self.timeout_s <= 0:
            return self
        assert SIGNAL is not None
        self._previous = signal.signal(SIGNAL, self._on_signal)
        self._armed = True
        self._thread = threading.Thread(target=self._watch, name="chaos-explore-watchdog")
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is None:
            return
        self._armed = False  # a signal already on its way is ignored from here
        self._done.set()
        self._thread.join()
        assert SIGNAL is not None
        signal.signal(SIGNAL, self._previous)

    def _watch(self) -> None:
        if self._done.wait(self.timeout_s):
            return
        frames = sys._current_frames()
        frame = frames.get(self._target)
        if frame is None:
            return
        self._hung = Hung(self.timeout_s, where(frame), stacks(frames, self._target))
        assert SIGNAL is not None
        signal.pthread_kill(self._target, SIGNAL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._armed and self._hung is not None:
            self._armed = False
            raise self._hung


def _ours(filename: str) -> bool:
    """Whether a frame is the code under test's (not Python's, a library's or this
    package's)."""
    return not filename.startswith(_MACHINERY) and "/pytest_chaos/" not in filename


def where(frame: FrameType) -> str:
    """``path:line in function`` of the deepest frame of ``frame``'s stack that belongs
    to the code under test (the deepest of all if every frame is the machinery's); the
    path relative to the current directory when it is under it."""
    summary = traceback.extract_stack(frame)
    entry = next((e for e in reversed(summary) if _ours(e.filename)), summary[-1])
    path = os.path.relpath(entry.filename)
    shown = entry.filename if path.startswith("..") else path
    return f"{shown}:{entry.lineno} in {entry.name}"


def stacks(frames: dict[int, FrameType], first: int) -> str:
    """Every thread's stack, the one with ident ``first`` first, as a traceback reads,
    from the first frame of the code under test on (pytest's own frames say nothing)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    order = [first, *(ident for ident in frames if ident != first)]
    parts = []
    for ident in order:
        frame = frames.get(ident)
        if frame is None or names.get(ident) == "chaos-explore-watchdog":
            continue
        summary = traceback.extract_stack(frame)
        start = next((i for i, entry in enumerate(summary) if _ours(entry.filename)), None)
        shown = summary[start:] if start is not None else summary[-8:]
        title = f"thread {names.get(ident, ident)}" + (" (the test's)" if ident == first else "")
        parts.append(f"{title}:\n" + "".join(traceback.format_list(shown)))
    return "\n".join(parts)
