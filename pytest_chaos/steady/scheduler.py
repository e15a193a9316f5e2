"""The open-loop scheduler of a running load: request ``i`` is due at ``started_at + i /
rps``; each due request goes to an idle lane (a worker with a connection of its own), and a
watchdog ends requests past their deadline (:mod:`pytest_chaos.steady.load` says why)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, final

from pytest_chaos.steady.metrics import Sample
from pytest_chaos.steady.targets import LoadTarget, Session

#: The clock of every sample: seconds, monotonic, the same in every thread.
clock = time.monotonic
#: The shortest nap of the scheduler. Event loops time in whole milliseconds (uvloop rounds
#: a shorter delay down to zero, which would spin), so requests due less than this apart
#: leave together, each with its own intended time: the schedule lag shows the cost.
MIN_SLEEP_S = 0.001
#: How often the watchdog looks for requests past their deadline, at most.
WATCH_PERIOD_S = 0.05


class Plan(Protocol):
    """What the scheduler reads of its load (:class:`pytest_chaos.steady.load.Load`)."""

    @property
    def target(self) -> LoadTarget: ...
    @property
    def rps(self) -> float: ...
    @property
    def total(self) -> int: ...
    @property
    def concurrency(self) -> int: ...


@dataclass(eq=False)
class _Lane:
    task: asyncio.Task[None] | None = None
    busy_since: float | None = None
    expired: bool = False


@final
@dataclass(eq=False)
class Scheduler:
    """The scheduler and its lanes, inside the load's event loop."""

    load: Plan
    session: Session
    record: Callable[[Sample], None]
    stopping: Callable[[], bool]
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    lanes: set[_Lane] = field(default_factory=set)
    idle: list[tuple[_Lane, asyncio.Future[float | None]]] = field(default_factory=list)
    backlog: deque[float] = field(default_factory=deque)
    opening: int = 0
    dispatched: int = 0
    unsent: int = 0
    finished: bool = False
    abandoned: bool = False
    peak_lanes: int = 0
    failure: BaseException | None = None
    waker: asyncio.Future[None] | None = None
    lanes_gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, t0: float) -> None:
        watchdog = self.loop.create_task(self._watch())
        try:
            await self._schedule(t0)
            self.finished = True
            for _, future in self.idle:
                if not future.done():
                    future.set_result(None)
            self.idle.clear()
            while self.lanes:
                self.lanes_gone.clear()
                await self.lanes_gone.wait()
            self.unsent = len(self.backlog)  # due, but stopped before a lane was free
            self.backlog.clear()
        finally:
            watchdog.cancel()
            tasks = [lane.task for lane in self.lanes if lane.task is not None]
            for task in tasks:  # only after a failure or an interrupt of the loop itself
                task.cancel()
            await asyncio.gather(watchdog, *tasks, return_exceptions=True)
        if self.failure is not None:
            raise self.failure

    @property
    def halted(self) -> bool:
        """Stopped by the user, or broken: no more requests are to be sent."""
        return self.failure is not None or self.stopping()

    def wake(self) -> None:
        """Interrupt the scheduler's nap (to notice a stop)."""
        if self.waker is not None and not self.waker.done():
            self.waker.set_result(None)

    async def _schedule(self, t0: float) -> None:
        rps, total = self.load.rps, self.load.total
        i = 0
        while i < total and not self.halted:
            now = clock()
            while i < total and (intended := t0 + i / rps) <= now:
                self._dispatch(intended)
                i += 1
            if i < total:
                delay = max(t0 + i / rps - clock(), MIN_SLEEP_S)
                self.waker = waker = self.loop.create_future()
                handle = self.loop.call_later(delay, self.wake)
                try:
                    await waker
                finally:
                    handle.cancel()
                    self.waker = None

    def _dispatch(self, intended: float) -> None:
        self.dispatched += 1
        while self.idle:
            _, future = self.idle.pop()  # the most recently idle lane: its connection is warm
            if not future.done():
                future.set_result(intended)
                return
        self.backlog.append(intended)
        if len(self.backlog) > self.opening and len(self.lanes) < self.load.concurrency:
            self._open_lane()

    def _open_lane(self) -> None:
        lane = _Lane()
        self.lanes.add(lane)
        self.peak_lanes = max(self.peak_lanes, len(self.lanes))
        self.opening += 1
        lane.task = self.loop.create_task(self._lane(lane))

    async def _next(self, lane: _Lane) -> float | None:
        """The lane's next request's intended start, or None when the lane is to close."""
        if self.halted:
            return None
        if self.backlog:
            return self.backlog.popleft()
        if self.finished:
            return None
        future: asyncio.Future[float | None] = self.loop.create_future()
        self.idle.append((lane, future))
        return await future

    async def _lane(self, lane: _Lane) -> None:
        conn: Any = None
        opened = False
        try:
            conn = await self.session.open()
            opened = True
            self.opening -= 1
            while (intended := await self._next(lane)) is not None:
                started = lane.busy_since = clock()
                try:
                    ok, outcome = await self.session.fire(conn)
                except asyncio.CancelledError:
                    if not lane.expired:
                        raise
                    task = asyncio.current_task()
                    if task is not None and hasattr(task, "uncancel"):  # Python >= 3.11
                        task.uncancel()
                    self.abandoned = True
                    lane.busy_since = None
                    self.record(Sample(intended, started, clock(), False, "Timeout"))
                    break  # the connection is in an unknown state: this lane closes
                except Exception as error:
                    ok, outcome = False, type(error).__name__
                lane.busy_since = None
                self.record(Sample(intended, started, clock(), ok, outcome))
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # not a request's failure: the load cannot go on
            if self.failure is None:
                self.failure = error
        finally:
            if not opened:
                self.opening -= 1
            else:
                try:
                    await asyncio.wait_for(self.session.close(conn), timeout=1.0)
                except (Exception, asyncio.CancelledError):
                    pass
            self.lanes.discard(lane)  # only now: the load ends when every lane has closed
            if self.failure is not None:
                self.backlog.clear()
                self.wake()
            elif self.backlog and not self.halted:
                self._open_lane()  # a lane that timed out leaves requests to send
            if not self.lanes:
                self.lanes_gone.set()

    async def _watch(self) -> None:
        deadline = self.session_deadline
        period = min(WATCH_PERIOD_S, deadline / 10)
        while True:
            await asyncio.sleep(period)
            now = clock()
            for lane in list(self.lanes):
                since = lane.busy_since
                if since is not None and now - since > deadline and not lane.expired:
                    lane.expired = True
                    if lane.task is not None:
                        lane.task.cancel()

    @property
    def session_deadline(self) -> float:
        return self.load.target.deadline_s
