"""A weighted router: traffic split between pools of upstreams, for releases under test.

A :class:`Router` listens on one address and sends each HTTP/1.1 request (``mode="http"``)
or each TCP connection (``mode="tcp"``) to a pool chosen by weight ("stable" 95, "canary"
5), and within the pool to its instances in turn. Weights and a pool's instances change
live; every routed request or connection leaves a :class:`Routed` for judges and
rollouts to read.

How a pool is chosen:

- without a sticky key, by a draw that the seed and the request's number alone fix (the
  n-th request without a key routed by this router): the same seed gives the n-th such
  request the same pool, whatever came before it (which request is the n-th is up to the
  clients, when several send at once);
- with one (an HTTP header's value, or the client's IP address in TCP mode), by weighted
  rendezvous hashing: each pool with a positive weight scores ``-ln(u) / weight``, ``u`` a
  hash of (pool, key) in (0, 1), and the lowest score wins. A key keeps its pool while the
  weights stay as they are, and moves only to a pool whose weight grew relative to its
  own: raising the canary from 5 to 10 moves some stable keys to the canary and nothing
  else; rolling back to 0 moves the canary's keys, and only them.

HTTP mode parses both sides with h11 and routes each request on its own, so a keep-alive
client connection follows a weight change from its next request on. Requests reach an
upstream over pooled keep-alive connections; one idle for more than :data:`IDLE_REUSE`
seconds is closed rather than reused, since servers close idle connections on timers of
their own and a request sent as one does is lost. A request on a reused connection that
fails before any answer is retried once on a fresh connection if its method is idempotent
and its body was small enough to keep. An upstream that cannot be reached, or that fails
before answering, gets the client a 502; a pool with no instance gets it a 503. While a
request waits for its response the router watches the client: a client that closes (gave
up) ends the request, recorded as failed. A request is recorded just before the last bytes
of its response go out, so a client that has its answer finds it in the observations.

TCP mode hands each connection to the proxy engine's relay (:mod:`pytest_chaos.proxy.engine`)
through a backend per upstream, an engine :class:`~pytest_chaos.proxy.engine.Proxy` with no
listener of its own.

Everything runs on one event loop (uvloop's if installed) in a daemon thread; live changes
from other threads are applied on that loop, between two choices. :meth:`Router.close`
aborts every connection: requests in flight end, recorded as failed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import http
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import h11

from pytest_chaos._net.loops import run, url_for
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.core.seeding import draw, fresh_seed
from pytest_chaos.proxy import timers
from pytest_chaos.proxy.engine import (
    Connection,
    Engine,
    Proxy,
    _Side,
    format_address,
    split_address,
)
from pytest_chaos.proxy.errors import BadRequest

if TYPE_CHECKING:
    from h11._headers import Headers

log = logging.getLogger("pytest_chaos.canary.router")

MODES = ("http", "tcp")
#: Bytes read from a socket at a time.
READ_SIZE = 64 * 1024
#: Largest request or response head (request or status line and headers).
MAX_HEAD = 64 * 1024
#: Seconds an upstream connection may have been idle and still be reused.
IDLE_REUSE = 1.0
#: Idle connections kept per upstream.
MAX_IDLE = 64
#: A request body up to this many bytes is kept, so that the request can be retried.
REPLAY_LIMIT = 1 << 20
#: While a request waits for its response, the router reads ahead of the client (to see it
#: close) up to this many bytes.
READ_AHEAD_LIMIT = 1 << 20
#: Seconds a request may wait for its response before the router watches its client.
WATCH_AFTER = 0.05
#: Seconds :meth:`Router.set_pool` waits for requests in flight to removed instances.
DRAIN_TIMEOUT = 30.0
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
#: Headers that belong to one connection and are not forwarded (RFC 9110, 7.6.1); the
#: framing headers pass, and h11 frames each side again as they say.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class Routed:
    """One request (HTTP mode) or one connection (TCP mode) the router routed."""

    pool: str
    #: ``host:port``; empty when the pool had no instance.
    upstream: str
    #: HTTP: from the request's first byte in to the response's last byte out; TCP: how
    #: long the connection lasted.
    latency_ms: float
    #: HTTP: a whole response with a status below 500 reached the client; TCP: the
    #: connection to the upstream succeeded.
    ok: bool
    #: The upstream's HTTP status; None in TCP mode or when it gave no response.
    status: int | None
    #: :func:`time.monotonic` when the request or connection started.
    at: float


class Router:
    """Weighted traffic between pools of upstreams; see the module's documentation.

    ``pools`` names each pool's ``host:port`` instances, in the order used for ties;
    ``weights`` are relative (``{"stable": 95, "canary": 5}``), missing pools weigh 0, and
    without them all traffic goes to the first pool. ``sticky`` is, in HTTP mode, the name
    of a request header whose value keys the choice (requests without it are spread by
    chance), and in TCP mode ``"client"``: the client's IP address. ``seed`` fixes the
    choices for traffic without a key (a fresh random seed when None).
    """

    def __init__(
        self,
        pools: Mapping[str, Sequence[str]],
        weights: Mapping[str, float] | None = None,
        *,
        mode: str = "http",
        sticky: str | None = None,
        seed: int | None = None,
        listen: str = "127.0.0.1:0",
        connect_timeout: float = 5.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'http' or 'tcp', got {mode!r}")
        checked = _check_pools(pools)
        self.mode = mode
        self.sticky = _check_sticky(sticky, mode)
        self.seed = seed
        self.connect_timeout = _check_timeout(connect_timeout)
        self._listen = _check_address(listen, "listen", port_zero=True)
        first = next(iter(checked))
        parsed = _check_weights(weights, checked) if weights is not None else {first: 100.0}
        self._table = _Table(checked, parsed)
        self._chance_seed = fresh_seed() if seed is None else seed
        self._by_chance = 0  # requests routed without a key so far
        self._turns: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changing = threading.Lock()
        self._observations: list[Routed] = []
        self._counts: dict[str, dict[str, int]] = {}
        self._count_pools(checked)
        self._address: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._front: _Front | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._closed = False

    # -- life --------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Router:
        """Listen, on an event loop in a daemon thread; return self once listening."""
        if self._thread is not None:
            raise RuntimeError("this Router was already started")
        self._thread = threading.Thread(
            target=run, args=(self._main(), True), name="pytest-chaos-router", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the router did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            self._closed = True
            raise self._error
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, close every connection and join the thread; idempotent."""
        thread = self._thread
        if thread is None or self._closed:
            self._closed = True
            return
        if threading.current_thread() is thread:
            raise RuntimeError("close() was called on the router's own thread")
        self._closed = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop has closed already
                pass
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the router's thread did not stop within {timeout} s")
        self._loop = None

    def __enter__(self) -> Router:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """Where the router listens, ``host:port``."""
        if self._address is None:
            raise RuntimeError("the router has not started; call start() first")
        return self._address

    @property
    def url(self) -> str:
        """``http://host:port`` of the router."""
        host, port = split_address(self.address, "listen")
        return url_for(host, port)

    # -- live changes ------------------------------------------------------------------------

    def weights(self) -> dict[str, float]:
        """The weight of every pool (0 for pools that get no traffic)."""
        return dict(self._table.weights)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """New weights (pools left out weigh 0), from the next request or connection on;
        requests in flight finish on their pool and no connection is dropped."""
        checked = _check_weights(weights, self._table.pools)  # pool names never change
        self._apply(lambda table: _Table(table.pools, checked), drain=0.0)

    def set_pool(
        self, name: str, upstreams: Sequence[str], *, drain: float = DRAIN_TIMEOUT
    ) -> None:
        """Replace the instances of pool ``name``. In HTTP mode, wait (up to ``drain``
        seconds) until requests in flight to removed instances have finished, so that they
        can be stopped once this returns; their idle connections are closed. TCP
        connections to a removed instance go on until they end. An empty list leaves the
        pool without instances: its share of requests is answered 503 (TCP: closed)."""
        if name not in self._table.pools:
            raise ValueError(f"unknown pool {name!r}; the pools are {_names(self._table.pools)}")
        instances = _check_upstreams(name, upstreams, allow_empty=True)
        self._count_pools({name: instances})
        self._apply(lambda table: _Table({**table.pools, name: instances}, table.weights), drain)

    def _apply(self, change: Callable[[_Table], _Table], drain: float) -> None:
        """Replace the table with ``change(table)``: on the loop while it runs, so that a
        change falls between two choices and concurrent changes are not lost. (Changes
        set values, so applying one twice, should the loop stop meanwhile, is harmless.)"""
        loop, front, thread = self._loop, self._front, self._thread
        if (
            loop is not None
            and front is not None
            and thread is not None
            and threading.current_thread() is not thread
        ):
            try:
                future = asyncio.run_coroutine_threadsafe(front.apply(change, drain), loop)
            except RuntimeError:  # the loop has closed
                pass
            else:
                while thread.is_alive() or future.done():
                    try:
                        return future.result(0.1)
                    except concurrent.futures.TimeoutError:
                        pass
                    except concurrent.futures.CancelledError:  # the router closed meanwhile
                        break
        with self._changing:  # not running (any more): no choice is being made
            self._table = change(self._table)

    # -- what happened -----------------------------------------------------------------------

    def observations(self, since: float | None = None, pool: str | None = None) -> list[Routed]:
        """What was routed, in the order it finished; only what started at or after
        ``since`` (a :func:`time.monotonic` time) and went to ``pool``, if given."""
        with self._lock:
            found = list(self._observations)
        return [
            item
            for item in found
            if (since is None or item.at >= since) and (pool is None or item.pool == pool)
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{"requests": n, "errors": m}`` per pool (``"canary"``) and per instance of a
        pool (``"canary/127.0.0.1:8001"``); an error is an observation that is not ok."""
        with self._lock:
            return {key: dict(value) for key, value in self._counts.items()}

    # -- used by the front ends, on the loop -------------------------------------------------

    def _route(self, key: str | None) -> tuple[str, str]:
        """A pool for ``key`` (or by chance without one), and its next instance in turn."""
        table = self._table
        if key is not None:
            pool = table.by_key(key)
        else:
            self._by_chance += 1
            pool = table.by_chance(draw(self._chance_seed, "route", self._by_chance))
        instances = table.pools[pool]
        if not instances:
            return pool, ""
        turn = self._turns.get(pool, 0)
        self._turns[pool] = turn + 1
        return pool, instances[turn % len(instances)]

    def _record(
        self, pool: str, upstream: str, started: float, ok: bool, status: int | None
    ) -> int:
        """Add an observation and count it; its index, for :meth:`_amend`."""
        latency_ms = (timers.now() - started) * 1000.0
        observation = Routed(pool, upstream, latency_ms, ok, status, started)
        with self._lock:
            self._observations.append(observation)
            for key in _count_keys(pool, upstream):
                entry = self._counts.setdefault(key, {"requests": 0, "errors": 0})
                entry["requests"] += 1
                entry["errors"] += int(not ok)
            return len(self._observations) - 1

    def _amend(self, index: int) -> None:
        """The observation at ``index`` said ok, and then the request failed after all."""
        with self._lock:
            observation = self._observations[index]
            if observation.ok:
                self._observations[index] = dataclasses.replace(observation, ok=False)
                for key in _count_keys(observation.pool, observation.upstream):
                    self._counts[key]["errors"] += 1

    def _count_pools(self, pools: Mapping[str, Sequence[str]]) -> None:
        with self._lock:
            for pool, instances in pools.items():
                for key in (pool, *(f"{pool}/{upstream}" for upstream in instances)):
                    self._counts.setdefault(key, {"requests": 0, "errors": 0})

    async def _main(self) -> None:
        front: _Front = _HttpFront(self) if self.mode == "http" else _TcpFront(self)
        host, port = split_address(self._listen, "listen")
        try:
            sock = await front.start(host, port)
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._address = format_address(sock.getsockname(), sock.family)
        self._stopping = asyncio.Event()
        self._front = front
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        log.info("router listening on %s (%s)", self._address, self.mode)
        try:
            await self._stopping.wait()
        finally:
            await front.close()


def _count_keys(pool: str, upstream: str) -> tuple[str, ...]:
    return (pool, f"{pool}/{upstream}") if upstream else (pool,)


# -- choosing ----------------------------------------------------------------------------------


class _Table:
    """Pools and weights at one moment: replaced whole on every change, never changed."""

    __slots__ = ("live", "pools", "total", "upstreams", "weights")

    def __init__(self, pools: Mapping[str, tuple[str, ...]], weights: Mapping[str, float]) -> None:
        self.pools = dict(pools)
        self.weights = {name: float(weights.get(name, 0.0)) for name in self.pools}
        self.live = [(name, weight) for name, weight in self.weights.items() if weight > 0]
        self.total = sum(weight for _, weight in self.live)
        self.upstreams = frozenset(u for instances in self.pools.values() for u in instances)

    def by_chance(self, unit: float) -> str:
        """The pool that ``unit`` (in [0, 1)) falls in, pools laid end to end by weight."""
        point = unit * self.total
        for name, weight in self.live:
            point -= weight
            if point < 0:
                return name
        return self.live[-1][0]  # rounding left the point at the very end

    def by_key(self, key: str) -> str:
        """Weighted rendezvous hashing: the pool with the lowest ``-ln(u) / weight``."""
        return min(self.live, key=lambda item: -math.log(_unit(item[0], key)) / item[1])[0]


def _unit(pool: str, key: str) -> float:
    """A hash of (pool, key), uniform in the open interval (0, 1)."""
    digest = hashlib.blake2b(f"{pool}\0{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


# -- validation --------------------------------------------------------------------------------


def _names(pools: Mapping[str, object]) -> str:
    return ", ".join(repr(name) for name in pools)


def _check_address(value: object, what: str, *, port_zero: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} address must be a 'host:port' string, got {value!r}")
    try:
        _, port = split_address(value, what)
    except BadRequest as error:
        raise ValueError(error.message) from None
    if port == 0 and not port_zero:
        raise ValueError(f"{what} address {value!r} must have a port from 1 to 65535")
    return value


def _check_upstreams(pool: str, upstreams: object, *, allow_empty: bool) -> tuple[str, ...]:
    if isinstance(upstreams, (str, bytes)) or not isinstance(upstreams, Sequence):
        raise TypeError(f"pool {pool!r} must be a list of 'host:port' strings, got {upstreams!r}")
    if not upstreams and not allow_empty:
        raise ValueError(f"pool {pool!r} has no upstream; give it at least one 'host:port'")
    return tuple(_check_address(upstream, f"pool {pool!r} upstream") for upstream in upstreams)


def _check_pools(pools: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(pools, Mapping):
        raise TypeError(f"pools must map pool names to lists of 'host:port', got {pools!r}")
    if not pools:
        raise ValueError("pools is empty; name at least one pool of upstreams")
    checked: dict[str, tuple[str, ...]] = {}
    for name, upstreams in pools.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"pool name must be a non-empty string without '/', got {name!r}")
        checked[name] = _check_upstreams(name, upstreams, allow_empty=False)
    return checked


def _check_weights(weights: object, pools: Mapping[str, object]) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must map pool names to numbers, got {weights!r}")
    checked: dict[str, float] = {}
    for name, weight in weights.items():
        if name not in pools:
            raise ValueError(f"weights name unknown pool {name!r}; the pools are {_names(pools)}")
        number = _finite(weight)
        if number is None or number < 0:
            raise ValueError(
                f"weight of pool {name!r} must be a finite number >= 0, got {weight!r}"
            )
        checked[name] = number
    if not any(checked.values()):
        raise ValueError(f"weights must give some pool a positive weight, got {dict(weights)!r}")
    return checked


def _check_sticky(sticky: object, mode: str) -> str | None:
    if sticky is None:
        return None
    if mode == "tcp":
        if sticky != "client":
            raise ValueError(
                f"sticky in TCP mode must be 'client' (the client's IP), got {sticky!r}"
            )
        return "client"
    if not isinstance(sticky, str) or not _TOKEN.fullmatch(sticky):
        raise ValueError(f"sticky must be the name of an HTTP request header, got {sticky!r}")
    return sticky.lower()


def _check_timeout(value: object) -> float:
    number = _finite(value)
    if number is None or number <= 0:
        raise ValueError(f"connect_timeout must be a number of seconds > 0, got {value!r}")
    return number


def _finite(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# -- front ends --------------------------------------------------------------------------------


class _Front:
    """What listens and relays, on the router's loop."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> Any:
        """Listen; return the listening socket."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def apply(self, change: Callable[[_Table], _Table], drain: float) -> None:
        """Replace the routing table with ``change(table)``; the HTTP front then drains."""
        router = self.router
        router._table = change(router._table)


# -- HTTP --------------------------------------------------------------------------------------


class _Failed(ChaosError):
    """One side of an exchange failed: reset, closed early, or spoke bad HTTP."""

    def __init__(self, message: str, protocol: h11.RemoteProtocolError | None = None) -> None:
        super().__init__(message)
        self.protocol = protocol


class _ClientFailed(_Failed):
    pass


class _UpstreamFailed(_Failed):
    pass


class _Wire:
    """One HTTP/1.1 connection, either side: h11's state and the stream under it. Any
    failure on it (reset, end mid-message, bad HTTP) raises its ``failure`` class.

    Output is corked: :meth:`queue` adds to what :meth:`flush` writes in one go, so that a
    small message goes out in one segment however many events make it."""

    __slots__ = ("conn", "failure", "first_read", "pending", "reader", "writer")

    def __init__(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        failure: type[_Failed],
    ) -> None:
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.failure = failure
        self.first_read: float | None = None
        self.pending: list[bytes] = []

    async def next_event(self, flushing: _Wire | None = None) -> h11.Event:
        """The next event from the peer; ``flushing``'s output is written before waiting."""
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as error:
                raise self.failure(str(error), error) from None
            if event is h11.NEED_DATA:
                if flushing is not None:
                    await flushing.flush()
                try:
                    data = await self.reader.read(READ_SIZE)
                except OSError as error:
                    raise self.failure(str(error) or type(error).__name__) from None
                if self.first_read is None:
                    self.first_read = timers.now()
                self.conn.receive_data(data)
            elif event is h11.PAUSED:
                raise self.failure("the peer sent more than one message at once")
            else:
                return cast(h11.Event, event)

    def queue(self, event: h11.Event) -> None:
        try:
            self.pending += self.conn.send_with_data_passthrough(event) or ()
        except h11.LocalProtocolError as error:
            raise self.failure(str(error)) from None

    async def flush(self) -> None:
        if not self.pending:
            return
        data, self.pending = self.pending, []
        if self.writer.transport.is_closing():
            raise self.failure("the connection is closed")
        try:
            self.writer.writelines(data)
            await self.writer.drain()
        except (OSError, RuntimeError) as error:  # uvloop: RuntimeError once closed
            raise self.failure(str(error) or type(error).__name__) from None

    async def send(self, event: h11.Event) -> None:
        self.queue(event)
        await self.flush()

    async def watch_close(self) -> bool:
        """Read ahead (h11 keeps what comes) until the peer closes: True then, False once it
        has sent :data:`READ_AHEAD_LIMIT` bytes ahead and watching must stop."""
        try:
            while len(self.conn.trailing_data[0]) < READ_AHEAD_LIMIT:
                data = await self.reader.read(READ_SIZE)
                self.conn.receive_data(data)
                if not data:
                    return True
        except (OSError, RuntimeError):
            return True
        return False

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.transport.is_closing()

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.transport.abort()


class _Watch:
    """While a request waits for its response, watch its client: one that closes its
    connection (it gave up) gets the request's task cancelled. The watch starts only after
    :data:`WATCH_AFTER` seconds, so that a quick response costs one timer and no more."""

    __slots__ = ("client", "closed", "done", "handle", "reading", "task")

    def __init__(self, client: _Wire) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.client = client
        self.task = task
        self.closed = False
        self.done = False
        self.reading: asyncio.Task[None] | None = None
        self.handle = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start)

    def _start(self) -> None:
        self.reading = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        if await self.client.watch_close() and not self.done:
            self.closed = True
            self.task.cancel()

    async def stop(self) -> None:
        """Stop watching; the client's stream is the request task's to read again after."""
        self.done = True
        self.handle.cancel()
        if self.reading is not None and not self.reading.done():
            self.reading.cancel()
            await asyncio.gather(self.reading, return_exceptions=True)


class _Outcome:
    """One request on its way: where it went, when it started, the upstream's status,
    whether all of the response was relayed, and its record once made. The record is made
    just before the last bytes go to the client, so a client that has its answer finds it
    in :meth:`Router.observations`; should those bytes then fail, the record is amended."""

    __slots__ = ("complete", "index", "pool", "router", "started", "status", "upstream")

    def __init__(self, router: Router, pool: str, upstream: str, started: float) -> None:
        self.router = router
        self.pool = pool
        self.upstream = upstream
        self.started = started
        self.status: int | None = None
        self.complete = False
        self.index: int | None = None

    @property
    def ok(self) -> bool:
        return self.complete and self.status is not None and self.status < 500

    def record(self) -> None:
        """Record the request as it stands (once; later calls amend a record that said ok
        for a request that has failed since)."""
        if self.index is None:
            self.index = self.router._record(
                self.pool, self.upstream, self.started, self.ok, self.status
            )
        elif not self.ok:
            self.router._amend(self.index)


class _Body:
    """A request's body on its way to the upstream: read from the client once, and kept (up
    to :data:`REPLAY_LIMIT`) so that a retry can send it again."""

    __slots__ = ("client", "done", "kept", "replayable", "size")

    def __init__(self, client: _Wire) -> None:
        self.client = client
        self.kept: list[bytes] = []
        self.size = 0
        self.replayable = True
        self.done = False

    async def send_to(self, upstream: _Wire) -> None:
        for chunk in self.kept:
            upstream.queue(h11.Data(data=chunk))
        while not self.done:
            event = await self.client.next_event(flushing=upstream)
            if isinstance(event, h11.EndOfMessage):
                self.done = True
            elif isinstance(event, h11.Data):
                if self.replayable:
                    self.size += len(event.data)
                    self.kept.append(bytes(event.data))
                    if self.size > REPLAY_LIMIT:
                        self.replayable = False
                        self.kept.clear()
                upstream.queue(h11.Data(data=event.data))
            else:
                raise _ClientFailed("the client closed its connection mid-request")
        await upstream.send(h11.EndOfMessage())


def _end_to_end(headers: Headers) -> list[tuple[bytes, bytes]]:
    """``headers`` without the hop-by-hop ones, nor those ``Connection`` names."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name == b"connection"
        for token in value.split(b",")
    }
    return [
        (name, value)
        for name, value in headers.raw_items()
        if (low := name.lower()) not in HOP_BY_HOP and low not in named
    ]


class _HttpFront(_Front):
    """Requests parsed with h11, each routed on its own, relayed as they stream."""

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        self.clients: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self.idle: dict[str, list[tuple[float, _Wire]]] = {}
        self.in_flight: dict[str, int] = {}
        self.busy: set[_Wire] = set()  # upstream connections carrying a request
        self.settled = asyncio.Event()  # set whenever a request in flight ends
        self.closing = False

    async def start(self, host: str, port: int) -> Any:
        server = await asyncio.start_server(self.serve, host or None, port, backlog=1024)
        self.server = server
        return server.sockets[0]

    async def close(self) -> None:
        """Abort every connection, and let each client's task end on its own: requests in
        flight end as failed (and are recorded so). Cancelling the tasks instead would have
        asyncio 3.11 log each one as an error."""
        self.closing = True
        if self.server is not None:
            self.server.close()
        for writer in self.clients.values():
            writer.transport.abort()
        for wire in [*self.busy, *(wire for idle in self.idle.values() for _, wire in idle)]:
            wire.abort()
        self.idle.clear()
        if self.clients:
            _, stragglers = await asyncio.wait(list(self.clients), timeout=1.0)
            for task in stragglers:  # still connecting to an upstream, say
                task.cancel()
            await asyncio.gather(*stragglers, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def apply(self, change: Callable[[_Table], _Table], drain: float) -> None:
        await super().apply(change, drain)
        table = self.router._table
        for address in [a for a in self.idle if a not in table.upstreams]:
            for _, wire in self.idle.pop(address):
                wire.close()
        deadline = time.monotonic() + drain
        while any(self.in_flight.get(a) for a in self.in_flight if a not in table.upstreams):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning(
                    "router: requests still in flight to removed instances after %s s", drain
                )
                return
            self.settled.clear()
            try:
                await asyncio.wait_for(self.settled.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    # -- one client connection ---------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.clients[task] = writer
        client = _Wire(
            h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD),
            reader,
            writer,
            _ClientFailed,
        )
        try:
            while await self._serve_one(client):
                client.conn.start_next_cycle()
        except _ClientFailed:
            pass
        except Exception:
            log.exception("router: a client connection failed")
        finally:
            del self.clients[task]
            writer.close()

    async def _serve_one(self, client: _Wire) -> bool:
        """Route one request; True if the connection can carry another."""
        client.first_read = None
        try:
            event = await client.next_event()
        except _ClientFailed as error:
            if error.protocol is not None:
                await self._reject(client, error.protocol)
            return False
        if not isinstance(event, h11.Request):
            return False
        started = client.first_read or timers.now()
        keep = await self._exchange(client, event, started)
        conn = client.conn
        return keep and conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _exchange(self, client: _Wire, request: h11.Request, started: float) -> bool:
        pool, address = self.router._route(self._key(request))
        outcome = _Outcome(self.router, pool, address, started)
        if not address:
            outcome.record()
            return await self._answer(client, request, 503, f"pool {pool!r} has no instance")
        self.in_flight[address] = self.in_flight.get(address, 0) + 1
        try:
            keep = await self._forward(client, request, address, outcome)
        except _UpstreamFailed as error:
            log.info("router: upstream %s (pool %s) failed: %s", address, pool, error)
            keep = False
            if outcome.status is None:
                outcome.record()
                message = f"upstream {address} of pool {pool!r}: {error}"
                keep = await self._answer(client, request, 502, message)
        except _ClientFailed:
            keep = False
        finally:
            self.in_flight[address] -= 1
            self.settled.set()
        outcome.record()
        return keep

    def _key(self, request: h11.Request) -> str | None:
        sticky = self.router.sticky
        if sticky is None:
            return None
        name = sticky.encode("ascii")
        for header, value in request.headers:
            if header == name:
                return value.decode("latin-1")
        return None

    async def _forward(
        self, client: _Wire, request: h11.Request, address: str, outcome: _Outcome
    ) -> bool:
        if client.conn.they_are_waiting_for_100_continue:
            await client.send(
                h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            )
        headers = [(n, v) for n, v in _end_to_end(request.headers) if n.lower() != b"expect"]
        if not any(name.lower() == b"host" for name, _ in headers):
            headers.append((b"Host", address.encode("ascii")))
        head = h11.Request(method=request.method, target=request.target, headers=headers)
        body = _Body(client)
        retried = False
        while True:
            upstream, reused = await self._connect(address, fresh=retried)
            self.busy.add(upstream)
            try:
                upstream.queue(head)
                await body.send_to(upstream)
                await self._respond(client, upstream, outcome)
            except _UpstreamFailed:
                upstream.abort()
                if retried or not reused or outcome.status is not None or not body.replayable:
                    raise
                if request.method not in IDEMPOTENT:
                    raise
                retried = True
                continue
            except BaseException:
                upstream.abort()
                raise
            finally:
                self.busy.discard(upstream)
            self._release(address, upstream)
            return True

    async def _respond(self, client: _Wire, upstream: _Wire, outcome: _Outcome) -> None:
        """Relay the response, and give up on it if the client closes meanwhile."""
        watch = _Watch(client)
        try:
            await self._relay_response(client, upstream, outcome)
        except asyncio.CancelledError:
            if not watch.closed:
                raise
            uncancel = getattr(watch.task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            raise _ClientFailed("the client closed its connection before the response") from None
        finally:
            await watch.stop()

    async def _relay_response(self, client: _Wire, upstream: _Wire, outcome: _Outcome) -> None:
        event = await upstream.next_event()
        while isinstance(event, h11.InformationalResponse):
            if event.status_code != 101:
                headers = _end_to_end(event.headers)
                client.queue(
                    h11.InformationalResponse(status_code=event.status_code, headers=headers)
                )
            event = await upstream.next_event(flushing=client)
        if not isinstance(event, h11.Response):
            raise _UpstreamFailed("the connection closed before a response")
        outcome.status = event.status_code
        headers = _end_to_end(event.headers)
        client.queue(
            h11.Response(status_code=event.status_code, headers=headers, reason=event.reason)
        )
        while True:
            event = await upstream.next_event(flushing=client)
            if isinstance(event, h11.Data):
                client.queue(event)
            elif isinstance(event, h11.EndOfMessage):
                client.queue(h11.EndOfMessage())
                outcome.complete = True
                outcome.record()
                try:
                    await client.flush()
                except _ClientFailed:
                    outcome.complete = False
                    raise
                return
            else:
                raise _UpstreamFailed("the connection closed mid-response")

    async def _answer(self, client: _Wire, request: h11.Request, status: int, reason: str) -> bool:
        """Answer the client ``status`` with ``reason`` as the body; True if its connection
        can carry another request."""
        if client.conn.our_state is not h11.SEND_RESPONSE:
            return False
        phrase = {502: b"Bad Gateway", 503: b"Service Unavailable"}[status]
        body = f"{status} {phrase.decode()}: {reason}\n".encode()
        close = client.conn.their_state is not h11.DONE
        headers = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode()),
        ]
        if close:
            headers.append((b"Connection", b"close"))
        try:
            await client.send(h11.Response(status_code=status, headers=headers, reason=phrase))
            if request.method != b"HEAD":
                await client.send(h11.Data(data=body))
            await client.send(h11.EndOfMessage())
        except _ClientFailed:
            return False
        return not close

    async def _reject(self, client: _Wire, error: h11.RemoteProtocolError) -> None:
        """Answer a request h11 could not parse (400, or 431 for a huge head)."""
        if client.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status = error.error_status_hint
        body = f"{status}: {error}\n".encode()
        headers = [
            (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Content-Length", str(len(body)).encode()),
            (b"Connection", b"close"),
        ]
        try:
            phrase = http.HTTPStatus(status).phrase.encode()
            await client.send(h11.Response(status_code=status, headers=headers, reason=phrase))
            await client.send(h11.Data(data=body))
            await client.send(h11.EndOfMessage())
        except _ClientFailed:
            pass

    # -- upstream connections ----------------------------------------------------------------

    async def _connect(self, address: str, fresh: bool) -> tuple[_Wire, bool]:
        """A kept idle connection to ``address`` that is young enough (and True), unless
        ``fresh``; else a new one (and False)."""
        if self.closing:
            raise _UpstreamFailed("the router is closing")
        idle = None if fresh else self.idle.get(address)
        now = timers.now()
        while idle and now - idle[0][0] > IDLE_REUSE:  # the oldest go first
            idle.pop(0)[1].close()
        while idle:
            _, wire = idle.pop()
            if wire.usable():
                return wire, True
            wire.abort()
        host, port = split_address(address, "upstream")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host or "localhost", port, limit=READ_SIZE),
                self.router.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError) as error:
            reason = str(error) or f"no connection within {self.router.connect_timeout} s"
            raise _UpstreamFailed(f"cannot connect: {reason}") from None
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        return _Wire(conn, reader, writer, _UpstreamFailed), False

    def _release(self, address: str, wire: _Wire) -> None:
        conn = wire.conn
        reusable = conn.our_state is h11.DONE and conn.their_state is h11.DONE
        if reusable and not self.closing and address in self.router._table.upstreams:
            idle = self.idle.setdefault(address, [])
            if len(idle) < MAX_IDLE:
                conn.start_next_cycle()
                idle.append((timers.now(), wire))
                return
        wire.close()


# -- TCP ---------------------------------------------------------------------------------------


class _TcpBackend(Proxy):
    """One upstream of a TCP-mode router: the proxy engine's connections and relay, fed by
    the router's listener instead of a listener of its own."""

    def __init__(self, front: _TcpFront, pool: str, upstream: str) -> None:
        super().__init__(front.engine, f"{pool}/{upstream}", front.listen, upstream, seed=0)
        self.front = front
        self.pool = pool
        self.started: dict[Connection, float] = {}

    @property
    def enabled(self) -> bool:
        return not self.front.closing

    def admit(self, connection: Connection, started: float) -> None:
        self.started[connection] = started
        connection.loop.call_later(self.front.router.connect_timeout, self._give_up, connection)

    def _give_up(self, connection: Connection) -> None:
        if not connection.closed and not connection.links["upstream"].ready:
            log.info("router: upstream %s did not answer in time", self.upstream)
            connection.close()

    def forget(self, connection: Connection) -> None:
        super().forget(connection)
        started = self.started.pop(connection, None)
        if started is not None:
            ok = connection.links["upstream"].ready
            self.front.router._record(self.pool, self.upstream, started, ok, None)


class _TcpClient(_Side):
    """A client the router's listener accepted, given to the backend chosen for it."""

    def __init__(self, front: _TcpFront) -> None:
        # the backend is chosen in connection_made, once the client's address is known
        super().__init__(cast(Proxy, None), None)
        self.front = front

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        started = timers.now()
        peer = transport.get_extra_info("peername")
        key = str(peer[0]) if self.front.router.sticky and peer else None
        pool, upstream = self.front.router._route(key)
        if not upstream:
            cast(asyncio.Transport, transport).abort()
            self.front.router._record(pool, upstream, started, False, None)
            return
        self.proxy = backend = self.front.backend(pool, upstream)
        super().connection_made(transport)
        if self.connection is not None:
            backend.admit(self.connection, started)


class _TcpFront(_Front):
    """Connections routed one by one and relayed by the engine."""

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        self.engine = Engine(seed=router.seed)
        self.listen = router._listen
        self.backends: dict[tuple[str, str], _TcpBackend] = {}
        self.closing = False

    def backend(self, pool: str, upstream: str) -> _TcpBackend:
        backend = self.backends.get((pool, upstream))
        if backend is None:
            backend = self.backends[pool, upstream] = _TcpBackend(self, pool, upstream)
        return backend

    async def start(self, host: str, port: int) -> Any:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _TcpClient(self), host or None, port, backlog=1024
        )
        self.server = server
        self.listen = format_address(server.sockets[0].getsockname(), server.sockets[0].family)
        return server.sockets[0]

    async def close(self) -> None:
        self.closing = True
        if self.server is not None:
            self.server.close()
        for backend in self.backends.values():
            await backend.stop()
        if self.server is not None:
            await self.server.wait_closed()
