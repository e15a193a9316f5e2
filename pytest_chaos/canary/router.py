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
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import final

from pytest_chaos._net.loops import run, url_for
from pytest_chaos.canary.checks import (
    check_address,
    check_pools,
    check_sticky,
    check_timeout,
    check_upstreams,
    check_weights,
    names,
)
from pytest_chaos.canary.front import Front
from pytest_chaos.canary.http_front import DRAIN_TIMEOUT, HttpFront
from pytest_chaos.canary.table import Table, count_keys
from pytest_chaos.canary.tcp_front import TcpFront
from pytest_chaos.core.seeding import draw, fresh_seed
from pytest_chaos.proxy import timers
from pytest_chaos.proxy.engine import format_address, split_address

log = logging.getLogger("pytest_chaos.canary.router")

MODES = ("http", "tcp")


@final
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


@final
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
        checked = check_pools(pools)
        self.mode = mode
        self.sticky = check_sticky(sticky, mode)
        self.seed = seed
        self.connect_timeout = check_timeout(connect_timeout)
        self.listen = check_address(listen, "listen", port_zero=True)
        first = next(iter(checked))
        parsed = check_weights(weights, checked) if weights is not None else {first: 100.0}
        self.table = Table(checked, parsed)
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
        self._front: Front | None = None
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
        return dict(self.table.weights)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """New weights (pools left out weigh 0), from the next request or connection on;
        requests in flight finish on their pool and no connection is dropped."""
        checked = check_weights(weights, self.table.pools)  # pool names never change
        self._apply(lambda table: Table(table.pools, checked), drain=0.0)

    def set_pool(
        self, name: str, upstreams: Sequence[str], *, drain: float = DRAIN_TIMEOUT
    ) -> None:
        """Replace the instances of pool ``name``. In HTTP mode, wait (up to ``drain``
        seconds) until requests in flight to removed instances have finished, so that they
        can be stopped once this returns; their idle connections are closed. TCP
        connections to a removed instance go on until they end. An empty list leaves the
        pool without instances: its share of requests is answered 503 (TCP: closed)."""
        if name not in self.table.pools:
            raise ValueError(f"unknown pool {name!r}; the pools are {names(self.table.pools)}")
        instances = check_upstreams(name, upstreams, allow_empty=True)
        self._count_pools({name: instances})
        self._apply(lambda table: Table({**table.pools, name: instances}, table.weights), drain)

    def _apply(self, change: Callable[[Table], Table], drain: float) -> None:
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
            self.table = change(self.table)

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

    # -- what the front ends use, on the loop (the protocol canary.front.Routing) -------------------------------------------------

    def route(self, key: str | None) -> tuple[str, str]:
        """A pool for ``key`` (or by chance without one), and its next instance in turn."""
        table = self.table
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

    def record(self, pool: str, upstream: str, started: float, ok: bool, status: int | None) -> int:
        """Add an observation and count it; its index, for :meth:`amend`."""
        latency_ms = (timers.now() - started) * 1000.0
        observation = Routed(pool, upstream, latency_ms, ok, status, started)
        with self._lock:
            self._observations.append(observation)
            for key in count_keys(pool, upstream):
                entry = self._counts.setdefault(key, {"requests": 0, "errors": 0})
                entry["requests"] += 1
                entry["errors"] += int(not ok)
            return len(self._observations) - 1

    def amend(self, index: int) -> None:
        """The observation at ``index`` said ok, and then the request failed after all."""
        with self._lock:
            observation = self._observations[index]
            if observation.ok:
                self._observations[index] = dataclasses.replace(observation, ok=False)
                for key in count_keys(observation.pool, observation.upstream):
                    self._counts[key]["errors"] += 1

    def _count_pools(self, pools: Mapping[str, Sequence[str]]) -> None:
        with self._lock:
            for pool, instances in pools.items():
                for key in (pool, *(f"{pool}/{upstream}" for upstream in instances)):
                    self._counts.setdefault(key, {"requests": 0, "errors": 0})

    async def _main(self) -> None:
        front: Front = HttpFront(self) if self.mode == "http" else TcpFront(self)
        host, port = split_address(self.listen, "listen")
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
