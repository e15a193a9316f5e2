"""The router's HTTP front: an h11 reverse proxy that picks an upstream per request,
reuses idle upstream connections, replays an idempotent request that met a dead pooled
connection, drains requests in flight when the table changes, and records each request."""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast, final

import h11

from pytest_chaos.canary.front import Front, Routing
from pytest_chaos.canary.table import Table
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.proxy import timers
from pytest_chaos.proxy.engine import split_address

if TYPE_CHECKING:
    from h11._headers import Headers

log = logging.getLogger("pytest_chaos.canary.router")

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

    def __init__(self, router: Routing, pool: str, upstream: str, started: float) -> None:
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
            self.index = self.router.record(
                self.pool, self.upstream, self.started, self.ok, self.status
            )
        elif not self.ok:
            self.router.amend(self.index)


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


@final
class HttpFront(Front):
    """Requests parsed with h11, each routed on its own, relayed as they stream."""

    def __init__(self, router: Routing) -> None:
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

    async def apply(self, change: Callable[[Table], Table], drain: float) -> None:
        await super().apply(change, drain)
        table = self.router.table
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
        pool, address = self.router.route(self._key(request))
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
        if reusable and not self.closing and address in self.router.table.upstreams:
            idle = self.idle.setdefault(address, [])
            if len(idle) < MAX_IDLE:
                conn.start_next_cycle()
                idle.append((timers.now(), wire))
                return
        wire.close()
