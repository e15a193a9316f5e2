"""What every in-process fault shares: a trigger, seeded draws of its own, counters, and a
record of each call it struck.

Sleeps and clocks are imported by name, bound once: a test may put a fault on
``time.sleep`` or ``asyncio.sleep`` itself, and the faults must not then call into it.
"""

from __future__ import annotations

import threading
from asyncio import sleep as async_sleep
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import monotonic, sleep
from typing import Any, TypeVar, final

from pytest_chaos.inject.draws import CallDraws
from pytest_chaos.inject.trigger import Trigger

_Choice = TypeVar("_Choice")


@final
@dataclass(frozen=True)
class Injection:
    """One call a fault struck: ``kind`` is what it did (``error``, ``latency``, ``status``,
    ``connect_error``...), ``target`` where (a function's dotted name, ``GET http://...``),
    ``call`` which matching call of that fault it was (from 1), ``at`` when (epoch
    seconds). ``dry_run`` injections were decided and recorded but not carried out."""

    kind: str
    target: str
    fault: str
    call: int
    at: float
    latency_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "fault": self.fault,
            "call": self.call,
            "at": self.at,
            "latency_ms": self.latency_ms,
            "details": dict(self.details),
            "dry_run": self.dry_run,
        }

    def describe(self) -> str:
        """One line for a test report."""
        parts = [f"call {self.call} of {self.target}: {self.kind}"]
        if self.latency_ms:
            parts.append(f"after {self.latency_ms:.1f} ms")
        parts.extend(f"{key}={value}" for key, value in self.details.items())
        return " ".join(parts) + (" (dry run)" if self.dry_run else "")


@final
@dataclass(frozen=True)
class Strike:
    """What the caller must do for a struck call: wait ``delay_s``, then raise ``error``
    if there is one."""

    delay_s: float = 0.0
    error: BaseException | None = None

    def apply(self) -> None:
        if self.delay_s > 0:
            sleep(self.delay_s)
        if self.error is not None:
            raise self.error

    async def apply_async(self) -> None:
        if self.delay_s > 0:
            await async_sleep(self.delay_s)
        if self.error is not None:
            raise self.error


def check_keywords(where: str, given: Mapping[str, object], allowed: type) -> None:
    """Reject a keyword argument that ``allowed`` (a TypedDict) does not declare."""
    unknown = sorted(set(given) - set(allowed.__annotations__))
    if unknown:
        raise TypeError(
            f"{where}(): unknown argument {unknown[0]!r}; use {', '.join(allowed.__annotations__)}"
        )


class Rule:
    """An armed fault: counts the calls that match it and decides, under a lock so threads
    and tasks see one sequence of call numbers, which of them it strikes. Each call's draws
    are named by ``seed``, the fault's ``name`` and the call's number, so the same fault
    replays the same call-by-call pattern under the same seed."""

    def __init__(self, name: str, trigger: Trigger, seed: int) -> None:
        self.name = name
        self.trigger = trigger
        self.armed = True
        self.matched = 0
        self.seed = seed
        self._lock = threading.Lock()
        self._first_call_at: float | None = None

    def draw(self, choose: Callable[[CallDraws], _Choice]) -> tuple[int, _Choice] | None:
        """Count one matching call; when the trigger fires, return its number and what
        ``choose`` drew for it from the call's own draws."""
        with self._lock:
            self.matched += 1
            call = self.matched
            elapsed = self._elapsed()
        draws = CallDraws(self.seed, self.name, call)
        if not self.trigger.fires(call, elapsed, draws):
            return None
        return call, choose(draws)

    def _elapsed(self) -> float:
        """Seconds since the first matching call (read only when the trigger has a window)."""
        if self.trigger.for_s is None:
            return 0.0
        now = monotonic()
        if self._first_call_at is None:
            self._first_call_at = now
        return now - self._first_call_at

    def disarm(self) -> None:
        self.armed = False
