"""One client connection of the HTTP API: requests read with h11 under deadlines, answers
written back, keep-alive between them, and bad clients shed early.

A request must arrive whole (head and body) within ``READ_TIMEOUT`` of its first byte, or,
for the first request of a connection, of the connection's accept, as Go's ``ReadTimeout``
counts (Toxiproxy sets 15 s); a keep-alive connection may then wait ``IDLE_TIMEOUT`` for
its next request. Garbage in a head, or a chunk size past the body limit, is answered at
once (:mod:`.framing`), without waiting for the rest of the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol, final

import h11

from pytest_chaos._net.framing import ChunkSizes, HeadCheck
from pytest_chaos._net.messages import Reply, Request
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.core.version import VERSION

log = logging.getLogger("pytest_chaos.proxy.api")

SERVER_HEADER = f"pytest-chaos/{VERSION}"
#: A request must arrive in full within this many seconds of its first byte (Toxiproxy: 15).
READ_TIMEOUT = 15.0
#: A keep-alive connection idle for this many seconds is closed (Toxiproxy: 60).
IDLE_TIMEOUT = 60.0
#: An answer must be written within this many seconds (Toxiproxy: 15).
WRITE_TIMEOUT = 15.0
#: Largest request head (request line and headers); a larger one answers 431.
MAX_HEAD = 64 * 1024
#: After refusing a request mid-body, read and drop at most this much for at most this long
#: before closing, so the client reads the answer instead of a reset (as Go's server does).
LINGER_BYTES = 4 << 20
LINGER_TIMEOUT = 1.0
_READ_SIZE = 64 * 1024


class Dispatcher(Protocol):
    """What a connection needs of its server: the body limit and the routes."""

    max_body: int
    too_large: Reply

    async def dispatch(self, request: Request) -> Reply: ...


class _Disconnected(ChaosError):
    """The client went away, or was too slow, before a request arrived in full."""


class _Refused(ChaosError):
    """A request refused before it was read in full; ``reply`` says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@final
class HttpConnection:
    """One client connection, served by :meth:`serve` until the client, a deadline or an
    error ends it; :meth:`abort` ends it from outside."""

    def __init__(
        self, api: Dispatcher, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.api = api
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self._head = False
        self._deadline: asyncio.TimerHandle | None = None
        self._expired = False
        self._idle = False  # waiting for the next request of a keep-alive connection
        self._chunks: ChunkSizes | None = None

    async def serve(self) -> None:
        try:
            self._expire_at(self.loop.time() + READ_TIMEOUT)
            while await self._serve_one():
                pass
            if self.conn.their_state in (h11.SEND_BODY, h11.ERROR):
                await self._linger()
        except (_Disconnected, ConnectionError):
            pass
        except Exception:
            log.exception("API connection failed")
        finally:
            self._expire_at(None)
            self.writer.close()
            self._done.set()

    async def shed(self, reply: Reply) -> None:
        """Answer ``reply`` without reading a request (the server is full), then close."""
        try:
            await self._write(self._encode(reply))
            await self._linger()
        except ConnectionError:
            pass
        finally:
            self.writer.close()
            self._done.set()

    def abort(self) -> None:
        self.writer.transport.abort()

    async def finished(self) -> None:
        await self._done.wait()

    # -- deadlines ---------------------------------------------------------------------------

    def _expire_at(self, when: float | None) -> None:
        """Close the connection at loop time ``when`` unless moved first (None: never)."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None if when is None else self.loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self.writer.transport.abort()

    # -- one request -------------------------------------------------------------------------

    async def _serve_one(self) -> bool:
        """Answer one request; True if the connection can carry another."""
        try:
            event = await self._next_event()
            if not isinstance(event, h11.Request):
                return False
            started = time.monotonic()
            self._head = event.method == b"HEAD"
            reply = await self._answer(event)
        except h11.RemoteProtocolError as error:
            await self._reject(error)
            return False
        except _Refused as refused:
            await self._send(refused.reply)
            return False
        self._expire_at(self.loop.time() + WRITE_TIMEOUT)
        await self._send(reply)
        log.debug(
            "%s %s %d (%.1f ms)",
            event.method.decode("latin-1"),
            event.target.decode("latin-1"),
            reply.status,
            (time.monotonic() - started) * 1000,
        )
        if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
            return False
        self.conn.start_next_cycle()
        self._idle = not self.conn.trailing_data[0]  # else the next request has begun
        self._expire_at(self.loop.time() + (IDLE_TIMEOUT if self._idle else READ_TIMEOUT))
        return True

    async def _answer(self, event: h11.Request) -> Reply:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers
        }
        if _declared_length(headers) > self.api.max_body:
            return self.api.too_large
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunks = ChunkSizes(self.api.max_body)
            self._check_chunks(self.conn.trailing_data[0])
        try:
            body = await self._read_body()
        finally:
            self._chunks = None
        if body is None:
            return self.api.too_large
        self._expire_at(None)  # the request is in: no read deadline while it is handled
        method = event.method.decode("latin-1")
        target = event.target.decode("latin-1")
        return await self.api.dispatch(Request(method, target, headers, body))

    async def _read_body(self) -> bytes | None:
        """The whole body, or None once it exceeds the limit."""
        if self.conn.they_are_waiting_for_100_continue:
            await self._write(
                self.conn.send(h11.InformationalResponse(status_code=100, headers=[]))
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            if not isinstance(event, h11.Data):
                raise _Disconnected()
            size += len(event.data)
            if size > self.api.max_body:
                return None
            chunks.append(bytes(event.data))

    async def _next_event(self) -> Any:
        """The next h11 event, reading as needed; garbage is refused as soon as it shows."""
        conn = self.conn
        head = HeadCheck()
        new_line = True  # lines of the head that are complete and not checked yet
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if new_line and conn.their_state is h11.IDLE:
                problem = head.check(conn.trailing_data[0])
                if problem is not None:
                    raise h11.RemoteProtocolError(problem, error_status_hint=400)
            data = await self.reader.read(_READ_SIZE)
            if self._expired:
                raise _Disconnected()
            if data and self._idle:
                # a keep-alive connection's next request: READ_TIMEOUT from its first byte
                self._idle = False
                self._expire_at(self.loop.time() + READ_TIMEOUT)
            conn.receive_data(data)
            new_line = b"\n" in data
            self._check_chunks(data)

    def _check_chunks(self, data: bytes) -> None:
        if self._chunks is None or not data:
            return
        problem = self._chunks.feed(data)
        if problem is None:
            return
        if problem.status == 413:
            raise _Refused(self.api.too_large)
        message = f'{{"error":"bad request body: {problem.reason}","status":{problem.status}}}'
        raise _Refused(Reply.text(problem.status, message, close=True))

    async def _reject(self, error: h11.RemoteProtocolError) -> None:
        """Answer a request h11 could not parse (400, or 431 for a huge head), then close."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status = error.error_status_hint
        phrase = http.HTTPStatus(status).phrase
        log.debug("bad HTTP request: %s", error)
        with contextlib.suppress(h11.LocalProtocolError):
            await self._send(Reply.text(status, f"{status} {phrase}: {error}", close=True))

    async def _linger(self) -> None:
        """Half-close, then drop what the client is still sending (bounded in bytes and
        time): closing with unread data would reset the connection, and the client could
        lose the answer it has not read yet."""
        if not self.writer.can_write_eof():
            return
        self.writer.write_eof()
        deadline = self.loop.time() + LINGER_TIMEOUT
        dropped = 0
        while dropped < LINGER_BYTES and (remaining := deadline - self.loop.time()) > 0:
            try:
                data = await asyncio.wait_for(self.reader.read(_READ_SIZE), remaining)
            except asyncio.TimeoutError:
                return
            if not data:
                return
            dropped += len(data)

    # -- answers -----------------------------------------------------------------------------

    async def _send(self, reply: Reply) -> None:
        status = http.HTTPStatus(reply.status)
        conn = self.conn
        response = h11.Response(status_code=status, headers=_headers(reply), reason=status.phrase)
        data = conn.send(response)
        if reply.body and reply.status != 204 and not self._head:
            data += conn.send(h11.Data(data=reply.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await self._write(data or b"")

    @staticmethod
    def _encode(reply: Reply) -> bytes:
        """``reply`` as bytes, for a connection whose request h11 has not seen."""
        status = http.HTTPStatus(reply.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        lines += [f"{name}: {value}" for name, value in _headers(reply)]
        return "\r\n".join([*lines, "", ""]).encode("latin-1") + reply.body

    async def _write(self, data: bytes | None) -> None:
        if data:
            self.writer.write(data)
            await self.writer.drain()


def _headers(reply: Reply) -> list[tuple[str, str]]:
    headers = [("Server", SERVER_HEADER), ("Date", _http_date())]
    if reply.content_type is not None:
        headers.append(("Content-Type", reply.content_type))
    headers.extend(reply.headers)
    if reply.status != 204:
        headers.append(("Content-Length", str(len(reply.body))))
    if reply.close:
        headers.append(("Connection", "close"))
    return headers


def _declared_length(headers: Mapping[str, str]) -> int:
    """The Content-Length announced (h11 has validated it), or 0 if none was."""
    values = headers.get("content-length", "").split(",")
    return max((int(value) for value in values if value.strip().isdigit()), default=0)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The ``Date`` header's value, formatted once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]
