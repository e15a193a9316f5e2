"""One direction of a proxied connection, and the toxic pipeline its bytes go through.

A link with no active toxic relays bytes straight from ``data_received`` to the other
socket, with flow control and nothing else; once a toxic is active, chunks go through a
queue to one pump task that runs each chunk through the active toxics, in the order they
were added. The pump walks the chain with an explicit stack instead of nested calls, so a
chain of any length costs no recursion, and each chain change touches one toxic's state on
each live link, so it costs the same at any chain length.

Whether a toxic applies to a link is decided by a draw that the proxy's seed, the toxic's
identity and the connection's ordinal alone fix (:func:`pytest_chaos.core.seeding.draw`), and
compared with the toxic's current ``toxicity``: no draw depends on how many other draws
came before it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import AsyncGenerator
from typing import Protocol, final

from pytest_chaos.core import seeding
from pytest_chaos.proxy import timers
from pytest_chaos.proxy.toxics import Chunk, Toxic, ToxicState


class ProxyIdentity(Protocol):
    """What a link reads of its proxy: the name (for logs) and the seed of its draws."""

    @property
    def name(self) -> str: ...
    @property
    def seed(self) -> int: ...


class Connection(Protocol):
    """What a link uses of its connection (:class:`pytest_chaos.proxy.engine.Connection`)."""

    loop: asyncio.AbstractEventLoop
    ordinal: int
    peer: str
    closed: bool
    links: dict[str, Link]

    @property
    def proxy(self) -> ProxyIdentity: ...
    @property
    def client(self) -> Side: ...  # the client's socket, answered by an HTTP toxic
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def reset(self) -> None: ...


log = logging.getLogger("pytest_chaos.proxy")

#: Bytes a toxic link may hold queued before it stops reading its source.
QUEUE_HIGH_WATER = 16 << 20  # throughput through a delay toxic is about this / the delay
#: Chunks the pump runs back to back before it lets the event loop serve others (the API).
CHUNKS_PER_TURN = 16

Stage = tuple[Toxic, ToxicState]


class Side(Protocol):
    """What a link needs of a socket: write to it, half-close it, pause and resume it."""

    def write(self, data: bytes) -> None: ...
    def write_eof(self) -> bool: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


@final
class Link:
    """One direction of a connection: reads ``source``, writes ``dest``, through toxics."""

    def __init__(self, connection: Connection, direction: str, source: Side, dest: Side) -> None:
        self.connection = connection
        self.direction = direction
        self.loop = connection.loop
        self.source = source
        self.dest = dest
        self.received = 0
        self.sent = 0
        self.ready = False  # the upstream socket is connected
        self.direct = False
        self.ended = False
        # every toxic of this direction, in chain order, with what it remembers here
        self._states: dict[Toxic, ToxicState] = {}
        self._active = 0  # toxics that apply here and do something (not noop)
        self._stages: tuple[Stage, ...] | None = ()  # None: rebuild before the next chunk
        self._queue: deque[Chunk] = deque()
        self._queued_bytes = 0
        self._pump: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._dest_paused = False
        self._writable: asyncio.Future[None] | None = None
        self._reading_paused = False

    # -- draws -------------------------------------------------------------------------------

    def draw(self, purpose: str, toxic: Toxic, *more: object) -> float:
        """A number in [0, 1) fixed by the proxy's seed, ``purpose``, the toxic's identity,
        this connection's ordinal and ``more`` (a chunk's ordinal, say)."""
        connection = self.connection
        return seeding.draw(
            connection.proxy.seed, purpose, toxic.identity, connection.ordinal, *more
        )

    def rng(self, purpose: str, toxic: Toxic, *more: object) -> random.Random:
        """A random stream fixed by the same identity as :meth:`draw`."""
        connection = self.connection
        return seeding.rng_for(
            connection.proxy.seed, purpose, toxic.identity, connection.ordinal, *more
        )

    # -- the chain ---------------------------------------------------------------------------

    def add(self, toxic: Toxic) -> None:
        """A toxic joined the end of the chain: draw whether it applies here."""
        state = self._states[toxic] = ToxicState(self.loop, self.draw("toxicity", toxic))
        if state.draw < toxic.toxicity:
            self._activate(toxic, state)
            self._changed()

    def update(self, toxic: Toxic) -> None:
        """A toxic's attributes or toxicity changed: cut its waits short, and apply it here
        or stop applying it as its toxicity now says (the draw itself stays)."""
        state = self._states[toxic]
        applies = state.draw < toxic.toxicity
        if state.active and not applies:
            self._deactivate(toxic, state, removed=False)
        elif applies and not state.active:
            self._activate(toxic, state)
        elif state.active:
            state.interrupt()
            toxic.bind(self, state)
        self._changed()

    def remove(self, toxic: Toxic) -> None:
        """A toxic left the chain; a chunk inside it goes on to the next stage."""
        state = self._states.pop(toxic)
        if state.active:
            self._deactivate(toxic, state, removed=True)
        state.retire()
        self._changed()

    def _activate(self, toxic: Toxic, state: ToxicState) -> None:
        state.active = True
        if not toxic.transparent:
            self._active += 1
        toxic.bind(self, state)

    def _deactivate(self, toxic: Toxic, state: ToxicState, removed: bool) -> None:
        state.active = False
        if not toxic.transparent:
            self._active -= 1
        state.interrupt()
        toxic.unbind(self, state, removed=removed)

    def _changed(self) -> None:
        self._stages = None
        if self.connection.closed:  # an unbind closed it (a removed timeout toxic)
            return
        self.direct = self.ready and not self._active and self._pump is None
        if self.ready and self._active and self._queue and self._pump is None:
            self._start_pump()
        self._wake()
        self._sync_reading()

    def stages(self) -> tuple[Stage, ...]:
        """The toxics that apply here and act on data, in chain order."""
        if self._stages is None:
            self._stages = tuple(
                (toxic, state)
                for toxic, state in self._states.items()
                if state.active and not toxic.transparent
            )
        return self._stages

    # -- input from the source ---------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        self._queue.append(Chunk(data, timers.now()))
        self._queued_bytes += len(data)
        self._after_enqueue()

    def feed_eof(self) -> None:
        if self.direct:
            self._finish()
            return
        self._queue.append(Chunk(None, timers.now()))
        self._after_enqueue()

    def _after_enqueue(self) -> None:
        if self._pump is not None:
            self._wake()
        elif self.ready:
            self._start_pump()
        self._sync_reading()

    def start(self) -> None:
        """Both sockets are connected: let what arrived meanwhile through, then relay."""
        self.ready = True
        if self._queue:
            self._start_pump()
        else:
            self.direct = not self._active
        self._sync_reading()

    def _start_pump(self) -> None:
        self.direct = False
        self._pump = self.loop.create_task(self._run_pump())

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run_pump(self) -> None:
        try:
            turn = 0
            # Once the link has ended (end of stream delivered, or the connection closed from
            # inside this very pump, which stop() cannot cancel) nothing more can be written.
            while not self.ended:
                if not self._queue:
                    if not self._active:
                        break
                    self._wakeup = self.loop.create_future()
                    await self._wakeup
                    continue
                chunk = self._queue.popleft()
                if chunk.data is not None:
                    self._queued_bytes -= len(chunk.data)
                    self._sync_reading()
                await self._through(chunk)
                turn += 1
                if turn % CHUNKS_PER_TURN == 0:
                    await asyncio.sleep(0)
        except Exception:
            # A bug in a toxic must not stall the connection silently: end it, loudly.
            log.exception(
                "proxy %s: %s pipeline failed; closing client %s",
                self.connection.proxy.name,
                self.direction,
                self.connection.peer,
            )
            self.connection.abort()
        finally:
            self._pump = None
            self.direct = self.ready and not self._active and not self._queue
            self._sync_reading()

    async def _through(self, chunk: Chunk) -> None:
        """Run one chunk through the chain as nested calls would (each piece a stage yields
        goes through the rest of the chain before the stage goes on), with a stack."""
        stages = self.stages()
        stack: list[tuple[int, AsyncGenerator[Chunk, None]]] = []
        item: Chunk | None = chunk
        position = 0
        try:
            while True:
                if item is not None:
                    while position < len(stages) and not stages[position][1].active:
                        position += 1  # left the chain, or stopped applying, meanwhile
                    if position == len(stages):
                        await self._write(item)
                    else:
                        toxic, state = stages[position]
                        stack.append((position + 1, toxic.pipe(self, state, item)))
                    item = None
                if not stack or self.ended:
                    return
                position, pieces = stack[-1]
                try:
                    item = await anext(pieces)
                except StopAsyncIteration:
                    stack.pop()
        finally:
            for _, pieces in reversed(stack):
                await pieces.aclose()

    # -- output to the destination -----------------------------------------------------------

    async def _write(self, chunk: Chunk) -> None:
        if chunk.data is None:
            self._finish()
            return
        while self._dest_paused and not self.connection.closed:
            self._writable = self.loop.create_future()
            await self._writable
        if self.connection.closed or self.ended:
            return
        self.dest.write(chunk.data)
        self.sent += len(chunk.data)

    def _finish(self) -> None:
        """End of stream reached the destination: half-close it, and close the connection
        once both directions have ended."""
        if self.ended:
            return
        self.ended = True
        other = self.connection.links["downstream" if self.direction == "upstream" else "upstream"]
        if other.ended or not self.dest.write_eof():
            self.connection.close()

    def dest_paused(self, paused: bool) -> None:
        self._dest_paused = paused
        if not paused and self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._sync_reading()

    def _sync_reading(self) -> None:
        want = (self.direct and self._dest_paused) or self._queued_bytes >= QUEUE_HIGH_WATER
        if want != self._reading_paused:
            self._reading_paused = want
            if want:
                self.source.pause()
            else:
                self.source.resume()

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    def stop(self) -> None:
        """The connection is gone: end timers, waits and the pump."""
        self.ended = True
        for toxic, state in self._states.items():
            if state.active:
                toxic.unbind(self, state, removed=False)
            state.retire()
        if self._pump is not None and self._pump is not asyncio.current_task():
            self._pump.cancel()
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
