"""Wake-ups for the delaying toxics that are never early.

The loops' own clocks are coarse: asyncio rounds a selector timeout up to whole
milliseconds, and uvloop's ``loop.time()`` is a millisecond clock cached once per loop
iteration, so its timers can fire up to a millisecond *early*. A latency toxic that releases
data early breaks the one promise users assert on (``elapsed >= latency``). Toxics therefore
timestamp chunks with :func:`time.monotonic` and wait with :func:`call_at`, which re-arms the
loop's timer until the monotonic deadline has really passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, final

now = time.monotonic


@final
class Handle:
    """A scheduled call; :meth:`cancel` keeps it from running."""

    __slots__ = ("args", "callback", "loop", "when")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        when: float,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self.loop = loop
        self.when = when
        self.callback: Callable[..., Any] | None = callback
        self.args = args

    def cancel(self) -> None:
        self.callback = None

    def _arm(self) -> None:
        self.loop.call_later(max(self.when - now(), 0.0), self._check)

    def _check(self) -> None:
        if self.callback is None:
            return
        if now() < self.when:
            self._arm()
        else:
            self.callback(*self.args)


def call_at(
    loop: asyncio.AbstractEventLoop, when: float, callback: Callable[..., Any], *args: Any
) -> Handle:
    """Call ``callback(*args)`` on ``loop`` once ``now()`` (time.monotonic) >= ``when``."""
    handle = Handle(loop, when, callback, args)
    handle._arm()
    return handle
