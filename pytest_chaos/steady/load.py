"""An open-loop, rate-controlled traffic generator: HTTP (httpx), TCP and callable targets.

A :class:`Load` is a description, not yet started: what each request does (its
:class:`LoadTarget`), how many per second, and its bound (a duration, a count, or both).
:meth:`Load.start` runs it in a background thread with an event loop of its own (uvloop when
installed) and returns a :class:`RunningLoad`; :meth:`Load.run` blocks until the bound is
reached and returns the :class:`~pytest_chaos.steady.metrics.Metrics`.

Open loop: request ``i`` is due at ``started_at + i / rps`` whatever happened to the
requests before it. A scheduler hands each due request to an idle *lane* — a worker that
runs one request at a time over a connection of its own (for HTTP, its own httpx transport
with one keep-alive connection: one ``httpx.AsyncClient`` shared by many concurrent
requests is ten times slower, in httpcore's pool). When every lane is busy the request
waits in a queue and another lane is opened, up to ``concurrency``; its latency counts from
the time it was due, so a slow target shows up as latency rather than as fewer requests
(coordinated omission; docs/load.md explains it).

Nothing outlives a load: every request has a deadline (HTTP: httpx's timeouts, and twice the
timeout overall; TCP and callables: the timeout), stopping waits for the requests in flight,
and the thread, its loop, the clients and the connections are all closed before
:meth:`RunningLoad.stop` or :meth:`RunningLoad.wait` returns. The one exception is a
synchronous callable that never returns: Python cannot stop a thread, so it is abandoned
(recorded as a ``"Timeout"``) and its worker thread ends when the callable does.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, final

import httpx

from pytest_chaos._net.loops import new_event_loop
from pytest_chaos.steady.metrics import Metrics, Sample
from pytest_chaos.steady.scheduler import Scheduler, clock
from pytest_chaos.steady.targets import (
    CallTarget,
    HttpTarget,
    LoadTarget,
    TcpTarget,
)

__all__ = ["CallTarget", "HttpTarget", "Load", "LoadTarget", "RunningLoad", "TcpTarget"]

# -- the description ---------------------------------------------------------------------


@final
@dataclass(frozen=True)
class Load:
    """A rate-controlled load, not yet started: ``rps`` requests per second against
    ``target`` for ``duration_s`` seconds and/or ``count`` requests (whichever ends first;
    at least one is required), never more than ``concurrency`` at once.

    Make one with :meth:`http`, :meth:`tcp` or :meth:`call`; it is immutable, so
    ``dataclasses.replace(load, rps=...)`` derives another (validated again). Every bad value
    is refused here, with a message naming it.
    """

    target: LoadTarget
    rps: float
    duration_s: float | None = None
    count: int | None = None
    concurrency: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.target, LoadTarget):
            raise TypeError(f"target must be a LoadTarget, got {self.target!r}")
        rps = self.rps
        if isinstance(rps, bool) or not isinstance(rps, (int, float)) or not rps > 0:
            raise ValueError(f"rps must be a positive number of requests per second, got {rps!r}")
        if not math.isfinite(rps):
            raise ValueError(f"rps must be finite, got {rps!r}")
        object.__setattr__(self, "rps", float(rps))
        if self.duration_s is None and self.count is None:
            raise ValueError("a load must be bounded: give duration_s, count, or both")
        duration = self.duration_s
        if duration is not None:
            if (
                isinstance(duration, bool)
                or not isinstance(duration, (int, float))
                or not math.isfinite(duration)
                or duration <= 0
            ):
                raise ValueError(
                    f"duration_s must be a positive number of seconds, got {duration!r}"
                )
            object.__setattr__(self, "duration_s", float(duration))
        count = self.count
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        concurrency = self.concurrency
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")

    @classmethod
    def http(
        cls,
        url: str,
        *,
        rps: float,
        duration_s: float | None = None,
        count: int | None = None,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        timeout: float = 5.0,
        ok: Callable[[httpx.Response], bool] | None = None,
        concurrency: int = 64,
    ) -> Load:
        """HTTP requests to ``url``. ``ok(response)`` decides success; by default any status
        below 500 except 429 (:func:`default_http_ok`). ``timeout`` bounds connecting,
        writing and each read (httpx's timeouts, which name the one that ran out), and twice
        ``timeout`` the whole request."""
        target = HttpTarget(
            url,
            method=method,
            headers=dict(headers) if headers is not None else None,
            content=content,
            timeout=timeout,
            ok=ok,
        )
        return cls(target, rps, duration_s=duration_s, count=count, concurrency=concurrency)

    @classmethod
    def tcp(
        cls,
        address: str,
        *,
        rps: float,
        duration_s: float | None = None,
        count: int | None = None,
        payload: bytes = b"",
        expect: int | bytes | None = None,
        timeout: float = 5.0,
        concurrency: int = 64,
    ) -> Load:
        """A TCP connection to ``"host:port"`` per request: connect, send ``payload``, read
        ``expect`` (a byte count, or the exact bytes) when given, close; ``timeout`` bounds
        the whole exchange."""
        target = TcpTarget(address, payload=payload, expect=expect, timeout=timeout)
        return cls(target, rps, duration_s=duration_s, count=count, concurrency=concurrency)

    @classmethod
    def call(
        cls,
        fn: Callable[[], Any],
        *,
        rps: float,
        duration_s: float | None = None,
        count: int | None = None,
        timeout: float = 5.0,
        ok: Callable[[Any], bool] | None = None,
        concurrency: int = 64,
    ) -> Load:
        """Call ``fn()`` per request: awaited when it is a coroutine function, else in a
        pool of ``concurrency`` threads. It succeeds unless it raises, runs past
        ``timeout`` or ``ok(result)`` is false."""
        target = CallTarget(fn, timeout=timeout, ok=ok)
        return cls(target, rps, duration_s=duration_s, count=count, concurrency=concurrency)

    @property
    def total(self) -> int:
        """How many requests the schedule holds: those due before ``duration_s`` ends,
        at most ``count``."""
        by_time = (
            math.ceil(self.duration_s * self.rps - 1e-9) if self.duration_s is not None else None
        )
        bounds = [n for n in (by_time, self.count) if n is not None]
        return max(1, min(bounds))

    def start(self) -> RunningLoad:
        """Start sending in a background thread; returns once the schedule has begun."""
        return RunningLoad(self)

    def run(self, timeout: float | None = None) -> Metrics:
        """Start, wait until the bound is reached (or ``timeout`` seconds, then stop), and
        return the metrics."""
        with self.start() as running:
            running.wait(timeout)
        return running.metrics()

    def __repr__(self) -> str:
        bounds = ", ".join(
            f"{name}={value:g}"
            for name, value in (("duration_s", self.duration_s), ("count", self.count))
            if value is not None
        )
        return f"<Load {self.target.describe()} rps={self.rps:g} {bounds}>"


@final
class RunningLoad:
    """A load being sent, in a thread of its own: see :meth:`Load.start`.

    ``started_at`` is the monotonic time the schedule began (request ``i`` is due at
    ``started_at + i / rps``). Use it as a context manager to stop it on exit.
    """

    def __init__(self, load: Load) -> None:
        self.load = load
        self.started_at: float = math.nan
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: Scheduler | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"pytest-chaos-load {load.target.describe()}", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if math.isnan(self.started_at):  # it broke before the schedule began
            self._thread.join()
            assert self._error is not None
            raise self._error

    # -- the background thread -----------------------------------------------------------

    def _main(self) -> None:
        # uvloop: about 10% more HTTP requests per CPU second here (httpx and anyio, not
        # the loop, dominate)
        loop = new_event_loop(fast=True)
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        except BaseException as error:
            self._error = error
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                with self._lock:
                    self._loop = None
                loop.close()
                self._done.set()
                self._ready.set()

    async def _run(self) -> None:
        session = self.load.target.session(self.load.concurrency)
        await session.setup()
        engine = Scheduler(self.load, session, self._record, self._stop.is_set)
        try:
            self._engine = engine
            self.started_at = clock()
            self._ready.set()
            await engine.run(self.started_at)
        finally:
            await session.teardown(engine.abandoned)

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    # -- the handle ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the load has ended: bound reached or stopped, every request finished,
        everything closed."""
        return self._done.is_set()

    @property
    def peak_lanes(self) -> int:
        """The most lanes (concurrent requests) the load had open at once."""
        return self._engine.peak_lanes if self._engine is not None else 0

    @property
    def scheduled(self) -> int:
        """Requests that have fallen due so far (sent, in flight or queued)."""
        return self._engine.dispatched if self._engine is not None else 0

    @property
    def unsent(self) -> int:
        """Requests that were due but still queued when the load was stopped, so were never
        sent nor recorded (0 unless it was stopped while the target was behind)."""
        return self._engine.unsent if self._engine is not None else 0

    def stop(self) -> None:
        """Stop scheduling, let the requests in flight finish (each within its deadline),
        close everything and return. Requests queued behind a slow target are not sent.
        Safe to call more than once and after the load ended."""
        self._stop.set()
        with self._lock:
            loop, engine = self._loop, self._engine
            if loop is not None and engine is not None:
                try:
                    loop.call_soon_threadsafe(engine.wake)
                except RuntimeError:  # the loop closed in between: nothing to wake
                    pass
        if threading.current_thread() is not self._thread:
            self._thread.join()
        self._raise_failure()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the load ends (or ``timeout`` seconds); return whether it has. Raises
        what broke the load, if something did (not a request's failure: those are
        samples)."""
        self._thread.join(timeout)
        self._raise_failure()
        return self.done

    def finished_before(self, moment: float) -> bool:
        """Whether every request due before ``moment`` (monotonic) has finished, so that
        metrics up to ``moment`` are complete; always true once the load has ended."""
        due = min(self.load.total, max(0, math.ceil((moment - self.started_at) * self.load.rps)))
        with self._lock:
            finished = sum(1 for sample in self._samples if sample.intended < moment)
        return finished >= due or self.done

    def samples(self) -> list[Sample]:
        """The samples recorded so far, in order of completion (a copy)."""
        with self._lock:
            return list(self._samples)

    def metrics(self, since: float | None = None, until: float | None = None) -> Metrics:
        """Metrics of the samples so far whose intended start is in ``[since, until)``
        (monotonic seconds; None: open), with per-second buckets from ``started_at``."""
        metrics = Metrics(self.samples(), start=self.started_at)
        return metrics if since is None and until is None else metrics.window(since, until)

    def _raise_failure(self) -> None:
        if self._done.is_set() and self._error is not None:
            raise self._error

    def __enter__(self) -> RunningLoad:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            try:
                self.stop()
            except Exception:
                pass  # the exception already on its way matters more
        else:
            self.stop()

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return f"<RunningLoad {self.load!r} {state} samples={len(self._samples)}>"
