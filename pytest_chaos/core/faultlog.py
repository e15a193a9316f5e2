"""What a fault is once applied: a record of what was done, where, and when it was undone;
and the log of a test's faults with the steps that undo them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, final


@final
@dataclass
class FaultRecord:
    """One applied fault, for hooks, the journal and reports.

    ``kind`` names the fault (``latency``, ``down``...), ``target`` what it hit (a proxy
    name, a process), ``details`` its parameters. ``dry_run`` faults were never applied.
    """

    kind: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    applied_at: float = field(default_factory=time.time)
    rolled_back_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "details": dict(self.details),
            "dry_run": self.dry_run,
            "applied_at": self.applied_at,
            "rolled_back_at": self.rolled_back_at,
        }


FaultListener = Callable[[FaultRecord], None]


def ignore_fault(fault: FaultRecord) -> None:
    """The listener used when nobody listens."""


@final
class FaultLog:
    """The faults one test (or the session) applied, and the steps that undo what it did.

    :meth:`record` reports a fault to ``on_applied`` and returns its rollback, which runs
    the fault's undo at most once (never under dry run, where nothing was applied) and
    reports it to ``on_rolled_back``. :meth:`undo` runs every pending step, newest first.
    """

    def __init__(
        self,
        *,
        dry_run: bool = False,
        on_applied: FaultListener = ignore_fault,
        on_rolled_back: FaultListener = ignore_fault,
    ) -> None:
        self.dry_run = dry_run
        self.on_applied = on_applied
        self.on_rolled_back = on_rolled_back
        self.faults: list[FaultRecord] = []
        self._steps: list[Callable[[], None]] = []

    def defer(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` at teardown (last in, first out)."""
        self._steps.append(undo)

    def record(self, fault: FaultRecord, undo: Callable[[], None]) -> Callable[[], None]:
        """Register an applied fault; the returned function rolls it back exactly once."""
        self.faults.append(fault)
        self.on_applied(fault)
        done = False

        def rollback() -> None:
            nonlocal done
            if done:
                return
            done = True
            try:
                if not fault.dry_run:
                    undo()
            finally:
                fault.rolled_back_at = time.time()
                self.on_rolled_back(fault)

        self.defer(rollback)
        return rollback

    def undo(self) -> list[BaseException]:
        """Run every pending step, newest first; return the errors met on the way, so that
        one failure does not stop the rest of the clean-up."""
        errors: list[BaseException] = []
        while self._steps:
            step = self._steps.pop()
            try:
                step()
            except Exception as error:
                errors.append(error)
        return errors


_Fault = TypeVar("_Fault", bound="ActiveFault")


class ActiveFault:
    """A fault that stays on until it is ended: by :meth:`end`, on leaving its ``with``
    block, or at teardown. ``record`` is its FaultRecord."""

    def __init__(
        self,
        record: FaultRecord,
        rollback: Callable[[], None],
        *,
        end: Callable[[], object] | None = None,
    ) -> None:
        self.record = record
        self._rollback = rollback
        self._end = end

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<{type(self).__name__} {self.record.kind} of {self.record.target} ({state})>"

    @property
    def active(self) -> bool:
        """Whether the fault is still on (not rolled back yet)."""
        return self.record.rolled_back_at is None

    def end(self) -> None:
        """End the fault now (rolling it back); ending it twice does nothing."""
        if self._end is not None:
            self._end()
        else:
            self._rollback()

    def __enter__(self: _Fault) -> _Fault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.end()
