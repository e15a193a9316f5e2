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
import inspect
import math
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from pytest_chaos._net.loops import new_event_loop
from pytest_chaos.steady.metrics import Metrics, Sample

__all__ = ["CallTarget", "HttpTarget", "Load", "LoadTarget", "RunningLoad", "TcpTarget"]

#: The clock of every sample: seconds, monotonic, the same in every thread.
clock = time.monotonic
#: The shortest nap of the scheduler. Event loops time in whole milliseconds (uvloop rounds
#: a shorter delay down to zero, which would spin), so requests due less than this apart
#: leave together, each with its own intended time: the schedule lag shows the cost.
MIN_SLEEP_S = 0.001
#: The User-Agent of HTTP load, unless the headers give another.
USER_AGENT = "pytest-chaos-load"
#: How often the watchdog looks for requests past their deadline, at most.
WATCH_PERIOD_S = 0.05


def default_http_ok(response: httpx.Response) -> bool:
    """The default verdict on an HTTP response: the service answered and was not overloaded
    or broken, i.e. any status below 500 except 429 (Too Many Requests). A 404 or 400 is the
    client's doing, so it counts as ok; pass ``ok=`` to be stricter."""
    return response.status_code < 500 and response.status_code != 429


# -- targets -----------------------------------------------------------------------------


class LoadTarget(ABC):
    """What one request does. A target is a frozen description; each run opens a
    :class:`_Session` of it in the load's event loop."""

    timeout: float

    @property
    def deadline_s(self) -> float:
        """How long a request may run before the generator gives up on it (``"Timeout"``)."""
        return self.timeout

    @abstractmethod
    def session(self, concurrency: int) -> _Session:
        """The per-run state: clients, executors."""

    @abstractmethod
    def describe(self) -> str:
        """A short human description, for reprs and reports."""


class _Session:
    """A target's state during one run, used only from the load's event loop. The hooks
    other than :meth:`fire` do nothing unless a target needs them."""

    async def setup(self) -> None:
        """Once, before the schedule starts."""

    async def open(self) -> Any:
        """A new lane's connection state (its client, for HTTP)."""
        return None

    async def fire(self, conn: Any) -> tuple[bool, str]:
        """One request on a lane: ``(ok, outcome)``; exceptions are errors named by class."""
        raise NotImplementedError

    async def close(self, conn: Any) -> None:
        """A lane is done with ``conn``."""

    async def teardown(self, abandoned: bool) -> None:
        """Once, after the last lane closed; ``abandoned`` when a request was given up."""


def _check_timeout(timeout: float) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _check_ok(ok: object) -> None:
    if ok is not None and not callable(ok):
        raise TypeError(f"ok must be a callable returning a bool, or None, got {ok!r}")


@dataclass(frozen=True)
class HttpTarget(LoadTarget):
    """One HTTP request per load request, sent with httpx over the lane's keep-alive
    connection; the outcome is the status code (or the httpx exception's class name), the
    verdict ``ok(response)``. Redirects are not followed, and proxy settings from the
    environment are not used (``trust_env=False``): load goes straight to the target."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] | None = None
    content: bytes | str | None = None
    timeout: float = 5.0
    ok: Callable[[httpx.Response], bool] | None = None

    def __post_init__(self) -> None:
        try:
            parsed = httpx.URL(self.url)
        except Exception:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"url must be an absolute http:// or https:// URL, got {self.url!r}")
        if not isinstance(self.method, str) or not self.method.isalpha():
            raise ValueError(f"method must be an HTTP method such as 'GET', got {self.method!r}")
        object.__setattr__(self, "method", self.method.upper())
        if isinstance(self.content, str):
            object.__setattr__(self, "content", self.content.encode())
        elif self.content is not None and not isinstance(self.content, bytes):
            raise TypeError(f"content must be bytes, str or None, got {self.content!r}")
        object.__setattr__(self, "timeout", _check_timeout(self.timeout))
        _check_ok(self.ok)

    @property
    def deadline_s(self) -> float:
        # httpx times connect, write, read and pool separately, each with ``timeout``, and
        # names the one that ran out; the overall deadline only stops a response that keeps
        # trickling in, so it is generous enough never to race them.
        return 2 * self.timeout

    def session(self, concurrency: int) -> _Session:
        return _HttpSession(self)

    def describe(self) -> str:
        return f"{self.method} {self.url}"


class _HttpSession(_Session):
    """Each lane drives its own ``httpx.AsyncHTTPTransport`` (one keep-alive connection)
    with a request built once: the transport is the layer under ``httpx.AsyncClient``, and
    skipping the client's redirect, cookie, auth and hook machinery, which a load does not
    use, sends about 30% more requests per CPU second (BENCHMARKS.md)."""

    def __init__(self, target: HttpTarget) -> None:
        self.target = target
        self.ok = target.ok or default_http_ok
        self.verify: ssl.SSLContext | None = None

    async def setup(self) -> None:
        # Each lane's transport would otherwise load the CA bundle again (~15 ms each).
        import certifi

        self.verify = ssl.create_default_context(cafile=certifi.where())
        # The first transport and the first request of a process import httpcore and
        # anyio's backend: ~70 ms, which would otherwise land on the first requests of the
        # schedule as lag (and open lanes for nothing).
        await self._transport().aclose()
        try:
            import anyio._backends._asyncio  # noqa: F401
            import httpcore._backends.anyio  # noqa: F401
        except ImportError:  # other versions lay out their modules differently
            pass

    def _transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(
            verify=self.verify if self.verify is not None else True,
            trust_env=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    async def open(self) -> tuple[httpx.AsyncHTTPTransport, httpx.Request]:
        target = self.target
        headers = {"user-agent": USER_AGENT, "accept": "*/*", **(target.headers or {})}
        request = httpx.Request(
            target.method,
            target.url,
            headers=headers,
            content=target.content,
            extensions={"timeout": httpx.Timeout(target.timeout).as_dict()},
        )
        return self._transport(), request

    async def fire(self, conn: tuple[httpx.AsyncHTTPTransport, httpx.Request]) -> tuple[bool, str]:
        transport, request = conn
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        response.request = request  # for an ``ok`` that looks at it
        return bool(self.ok(response)), str(response.status_code)

    async def close(self, conn: tuple[httpx.AsyncHTTPTransport, httpx.Request]) -> None:
        await conn[0].aclose()


@dataclass(frozen=True)
class TcpTarget(LoadTarget):
    """One TCP connection per load request: connect to ``host:port``, send ``payload``,
    read the reply when ``expect`` asks for one (a number of bytes, or the exact bytes),
    close. The outcome is ``"ok"``, ``"mismatch"`` (other bytes than expected) or the
    exception's class name (``ConnectionRefusedError``, ``IncompleteReadError``...)."""

    address: str
    payload: bytes = b""
    expect: int | bytes | None = None
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.address, str):
            raise TypeError(f"address must be a 'host:port' string, got {self.address!r}")
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"address must be 'host:port', got {self.address!r}")
        if not isinstance(self.payload, bytes):
            raise TypeError(f"payload must be bytes, got {self.payload!r}")
        expect = self.expect
        if not (expect is None or isinstance(expect, bytes)) and (
            isinstance(expect, bool) or not isinstance(expect, int) or expect < 0
        ):
            raise ValueError(
                f"expect must be a byte count >= 0, the bytes expected, or None, "
                f"got {self.expect!r}"
            )
        object.__setattr__(self, "timeout", _check_timeout(self.timeout))

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def session(self, concurrency: int) -> _Session:
        return _TcpSession(self)

    def describe(self) -> str:
        return f"tcp://{self.address}"


class _TcpSession(_Session):
    def __init__(self, target: TcpTarget) -> None:
        self.target = target

    async def fire(self, conn: Any) -> tuple[bool, str]:
        target = self.target
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            if target.payload:
                writer.write(target.payload)
                await writer.drain()
            expect = target.expect
            if isinstance(expect, bytes):
                if await reader.readexactly(len(expect)) != expect:
                    return False, "mismatch"
            elif expect:
                await reader.readexactly(expect)
            return True, "ok"
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


@dataclass(frozen=True)
class CallTarget(LoadTarget):
    """One call of ``fn()`` per load request: a coroutine function is awaited in the
    load's loop, any other callable runs in a pool of ``concurrency`` threads. The outcome is
    ``"ok"``, ``"error"`` when ``ok(result)`` says no, or the exception's class name."""

    fn: Callable[[], Any]
    timeout: float = 5.0
    ok: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"fn must be a callable taking no arguments, got {self.fn!r}")
        object.__setattr__(self, "timeout", _check_timeout(self.timeout))
        _check_ok(self.ok)

    @property
    def is_async(self) -> bool:
        fn = self.fn
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
        )

    def session(self, concurrency: int) -> _Session:
        return _CallSession(self, concurrency)

    def describe(self) -> str:
        return f"call {getattr(self.fn, '__qualname__', repr(self.fn))}"


class _CallSession(_Session):
    def __init__(self, target: CallTarget, concurrency: int) -> None:
        self.target = target
        self.concurrency = concurrency
        self.executor: ThreadPoolExecutor | None = None

    async def setup(self) -> None:
        if not self.target.is_async:
            self.executor = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="pytest-chaos-load-call"
            )

    async def fire(self, conn: Any) -> tuple[bool, str]:
        if self.executor is None:
            result = await self.target.fn()
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.executor, self.target.fn)
            if inspect.isawaitable(result):  # a plain function that returned a coroutine
                result = await result
        if self.target.ok is not None and not self.target.ok(result):
            return False, "error"
        return True, "ok"

    async def teardown(self, abandoned: bool) -> None:
        if self.executor is not None:
            # A call given up on still holds its thread; waiting for it could take forever.
            self.executor.shutdown(wait=not abandoned, cancel_futures=True)


# -- the description ---------------------------------------------------------------------


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


# -- the run -----------------------------------------------------------------------------


@dataclass(eq=False)
class _Lane:
    task: asyncio.Task[None] | None = None
    busy_since: float | None = None
    expired: bool = False


@dataclass(eq=False)
class _Engine:
    """The scheduler and its lanes, inside the load's event loop."""

    load: Load
    session: _Session
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
        self._engine: _Engine | None = None
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
        engine = _Engine(self.load, session, self._record, self._stop.is_set)
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
