"""Real servers for the load tests, on 127.0.0.1 in a thread of the test process (with an
asyncio loop of their own), so a test can count connections and requests and stall them.

HTTP/1.1 with keep-alive; the path picks the behaviour:

- ``/fast``: 200 ``ok`` at once;
- ``/slow?ms=N``: 200 after N milliseconds;
- ``/status/N``: status N at once;
- ``/close``: closes the connection without an answer;
- ``/hang``: never answers (until the client goes away or the server stops).

:meth:`LoadServer.stall` holds every answer (on any path) until a moment, as a server
that freezes for a while does. The TCP echo server sends back what it receives until the
client closes.

Everything is bounded: stopping closes the listeners and every open connection, stops the
loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
_T = TypeVar("_T", bound="_Threaded")
REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}


class _Threaded:
    """An asyncio loop in a daemon thread, and the bookkeeping of connections."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = threading.Lock()
        self.connections_total = 0
        self.port = 0

    @property
    def connections_open(self) -> int:
        with self.lock:
            return len(self.writers)

    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.server = self._run(self._listen())
        self.port = self.server.sockets[0].getsockname()[1]

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._connection, LOOPBACK, 0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        with self.lock:
            self.writers.add(writer)
            self.tasks.add(task)
            self.connections_total += 1
        try:
            await self.serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with self.lock:
                self.writers.discard(writer)
                self.tasks.discard(task)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def wait_idle(self, timeout: float = 5.0) -> int:
        """Wait until no connection is open (clients closed theirs); the number left."""
        deadline = time.monotonic() + timeout
        while self.connections_open and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.connections_open

    def stop(self) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()
            with self.lock:
                tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.server.wait_closed()

        try:
            self._run(close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    def __enter__(self: _T) -> _T:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoadServer(_Threaded):
    """The HTTP server; ``url(path)`` builds a URL to it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.stall_until = 0.0  # loop.time() until which answers wait
        #: The last request: method, target, headers (lower-case names), body.
        self.last: tuple[str, str, dict[str, str], bytes] | None = None

    def url(self, path: str = "/fast") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def stall(self, seconds: float) -> None:
        """Hold every answer, from now on, until ``seconds`` from now."""

        def set_stall() -> None:
            self.stall_until = self.loop.time() + seconds

        self.loop.call_soon_threadsafe(set_stall)

    def reset(self) -> None:
        with self.lock:
            self.requests = self.in_flight = self.max_in_flight = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            with self.lock:
                self.last = (method, target, headers, body)
                self.requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                answer = await self.answer(method, target, reader)
            finally:
                with self.lock:
                    self.in_flight -= 1
            if answer is None:
                return  # close without an answer
            writer.write(answer)
            await writer.drain()

    async def answer(self, method: str, target: str, reader: asyncio.StreamReader) -> bytes | None:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        wait = self.stall_until - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        status = 200
        if path == "/slow":
            await asyncio.sleep(int(query.get("ms", ["100"])[0]) / 1000)
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
        elif path == "/close":
            return None
        elif path == "/hang":
            while await reader.read(65536):  # until the client gives up and closes
                pass
            return None
        elif path != "/fast":
            status = 404
        body = b"ok" if method != "HEAD" else b""
        reason = REASONS.get(status, "Status")
        return (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body


class EchoServer(_Threaded):
    """The TCP echo server; ``address`` is ``host:port``."""

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
