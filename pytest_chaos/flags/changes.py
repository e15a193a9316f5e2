"""What a flag store reports and reads besides answers: changes, evaluations and its clock.

Kept apart from ``store.py`` so listeners, audits and tests can import these small value
types (and the movable clock gradual rollouts read) without the evaluation machinery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol, final

__all__ = ["Change", "Clock", "Evaluation", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Where a store reads the time: seconds as a float (the epoch for the system clock)."""

    def now(self) -> float:
        """The current time in seconds."""
        ...


@final
class SystemClock:
    """The wall clock (``time.time``): the default for a store nobody needs to move."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()


@final
class ManualClock:
    """A clock that only moves when a test moves it, so a gradual rollout can be stepped.

    ``ManualClock(start)`` reads ``start`` until :meth:`advance` is called.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The time the test last set."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``; time does not run backwards."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back, got advance({seconds!r})")
        self._now += seconds


@final
@dataclass(frozen=True)
class Change:
    """One change to a store, as listeners receive it and the audit keeps it.

    ``kind`` is ``"set"`` (a feature added or replaced, by ``set_unleash`` or ``define``),
    ``"enable"``, ``"disable"``, ``"remove"``, ``"kill"`` or ``"revive"``. For the first four, ``before``/``after`` are
    the feature's Unleash JSON (None when it did not exist / no longer exists); for
    ``kill``/``revive`` they are whether the flag (``name``) or every flag (``name`` None)
    was killed. ``at`` is the store's clock reading.
    """

    kind: str
    name: str | None
    before: Any
    after: Any
    at: float


@final
@dataclass(frozen=True)
class Evaluation:
    """One flag evaluation with why it came out that way (OpenFeature's vocabulary).

    ``value``: whether the flag is on (``is_enabled``'s answer). ``variant``: the variant
    chosen, None when none was (no variants, or the flag is off). ``reason``:

    - ``STATIC``: on for everyone: no strategies, or a matching ``default`` strategy
      without constraints, or a 100% rollout without constraints;
    - ``TARGETING_MATCH``: a constraint, a ``userWithId`` list, an address or host list,
      or a variant override decided;
    - ``SPLIT``: a hash decided: a partial rollout let the user in, or a weighted variant
      was picked;
    - ``DISABLED``: the flag is switched off or killed (value False);
    - ``DEFAULT``: the flag is on but no strategy matched (value False);
    - ``ERROR``: the store lacks the flag (``error_code`` ``FLAG_NOT_FOUND``), the answer
      needs an identifier the context lacks (``TARGETING_KEY_MISSING``, only when asked
      with ``identifier_required``), or the evaluation raised (``GENERAL``); value is the
      caller's default.

    ``payload``: the chosen variant's Unleash payload, None when it has none.
    """

    value: bool
    variant: str | None
    reason: str
    error_code: str | None = None
    payload: Any = None
