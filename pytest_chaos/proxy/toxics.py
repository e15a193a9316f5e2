"""Toxic types of the Toxiproxy API, one class each (:mod:`.registry` has them by name).

A toxic is a description (type, name, stream, toxicity, attributes) plus the behaviour of one
stage in a link's pipeline. Attribute names, units and defaults are Toxiproxy's: its Go code
is the reference. A stage is an async generator: it takes one
chunk and yields what goes on to the next stage, waiting in between as it must; one pump
per link runs the stages in turn (see :mod:`.link`). Waits use absolute deadlines measured
from when a chunk was read, so a latency toxic pipelines exactly as the goroutine chain of
Toxiproxy does.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, final

from pytest_chaos.proxy import timers


class Writable(Protocol):
    """A side of a connection that bytes can be written to."""

    def write(self, data: bytes) -> None: ...


class Closable(Protocol):
    """What a toxic may do to the connection it runs on: close or reset it, see whether it
    is closed, and (the HTTP toxics) answer its client in the server's place."""

    @property
    def closed(self) -> bool: ...
    @property
    def client(self) -> Writable: ...
    def close(self) -> None: ...
    def reset(self) -> None: ...


class LinkView(Protocol):
    """What a toxic sees of the link it runs on (:class:`pytest_chaos.proxy.link.Link`):
    its loop, its connection, and its seeded random numbers."""

    loop: asyncio.AbstractEventLoop

    @property
    def connection(self) -> Closable: ...
    def draw(self, purpose: str, toxic: Toxic, *more: object) -> float: ...
    def rng(self, purpose: str, toxic: Toxic, *more: object) -> random.Random: ...


STREAMS = ("upstream", "downstream")
#: A bandwidth-limited link idle longer than this starts its schedule afresh.
IDLE_GAP_S = 0.002


@final
@dataclass(slots=True)
class Chunk:
    """Bytes read from a link's source (``data is None`` marks end of stream), with the
    loop time at which they were read or last released by a delaying toxic."""

    data: bytes | None
    ts: float


Pieces = AsyncGenerator[Chunk, None]


@final
class ToxicState:
    """What one toxic remembers on one link, across updates of the toxic and re-draws of
    toxicity: byte counts, timers, and the waits that a change must cut short. ``draw``
    decides whether the toxic applies on the link (it does while ``draw < toxicity``)."""

    __slots__ = (
        "_loop",
        "_waiters",
        "active",
        "bound_version",
        "chunks",
        "clock",
        "draw",
        "extra",
        "last_done",
        "retired",
        "timer",
        "transmitted",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, draw: float = 0.0) -> None:
        self._loop = loop
        self._waiters: set[asyncio.Future[bool]] = set()
        self.draw = draw
        self.active = False
        self.retired = False
        self.chunks = 0  # chunks the toxic has taken in on this link: identifies each one
        self.bound_version = -1
        self.transmitted = 0
        self.clock = 0.0
        self.last_done = 0.0
        self.timer: asyncio.TimerHandle | None = None  # timeout toxic: loop timer
        self.extra: Any = None  # what else a toxic keeps per link (an HTTP toxic's framer)

    async def sleep_until(self, when: float) -> bool:
        """Wait for the loop time ``when``; False if the toxic changed or went away first."""
        if self.retired:
            return False
        loop = self._loop
        if when <= timers.now():
            return True
        waiter: asyncio.Future[bool] = loop.create_future()
        handle = None if math.isinf(when) else timers.call_at(loop, when, _resolve, waiter, True)
        self._waiters.add(waiter)
        try:
            return await waiter
        finally:
            if handle is not None:
                handle.cancel()
            self._waiters.discard(waiter)

    def interrupt(self) -> None:
        """Cut short every wait in progress, as Toxiproxy interrupts a toxic it updates."""
        for waiter in self._waiters:
            _resolve(waiter, False)

    def retire(self) -> None:
        """The toxic left the chain: pending waits end and later chunks pass untouched."""
        self.retired = True
        self.active = False
        self.interrupt()
        self.cancel_timer()

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


class Toxic:
    """A toxic as the API describes it, and the pipeline stage it becomes on a link."""

    type: ClassVar[str]
    attribute_defaults: ClassVar[dict[str, int]] = {}
    #: Attributes that are text (an extension's: Toxiproxy's are all integers).
    text_defaults: ClassVar[dict[str, str]] = {}
    #: The range of an integer attribute, where it has one beyond "not negative".
    limits: ClassVar[dict[str, tuple[int, int]]] = {}
    #: Passes every chunk on unchanged at once: the pump need not run it at all.
    transparent: ClassVar[bool] = False

    def __init__(
        self, name: str, stream: str, toxicity: float, attributes: Mapping[str, int | str]
    ) -> None:
        self.name = name
        self.stream = stream
        self.toxicity = toxicity
        self.attributes = {**self.attribute_defaults}
        self.text = {**self.text_defaults}
        self._merge(attributes)
        self.version = 0
        #: What its draws are named by: the name, and ``#n`` for the n-th toxic of that
        #: name on its proxy (set by the proxy when the toxic is added).
        self.identity = name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": _json_number(self.toxicity),
            "attributes": {**self.attributes, **self.text},
        }

    def update(self, attributes: Mapping[str, int | str], toxicity: float | None) -> None:
        """Merge new attribute values (already validated) and bump the version."""
        self._merge(attributes)
        if toxicity is not None:
            self.toxicity = toxicity
        self.version += 1

    def _merge(self, attributes: Mapping[str, int | str]) -> None:
        for key, value in attributes.items():
            if isinstance(value, str):
                self.text[key] = value
            else:
                self.attributes[key] = value

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        """What becomes of one chunk on ``link``: the pieces passed on, in order."""
        yield chunk

    def bind(self, link: LinkView, state: ToxicState) -> None:
        """Called when the toxic becomes (or stays) active on a link after a chain change."""
        state.bound_version = self.version

    def unbind(self, link: LinkView, state: ToxicState, removed: bool) -> None:
        """Called when the toxic stops being active on a link; ``removed`` if it was deleted."""
        state.cancel_timer()


@final
class NoopToxic(Toxic):
    type = "noop"
    transparent = True


@final
class LatencyToxic(Toxic):
    """Delays each chunk by ``latency`` ms plus or minus ``jitter`` ms from when it was read."""

    type = "latency"
    attribute_defaults: ClassVar[dict[str, int]] = {"latency": 0, "jitter": 0}

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        if chunk.data is None:
            yield chunk
            return
        state.chunks += 1
        delay_ms = self.attributes["latency"]
        jitter = self.attributes["jitter"]
        if jitter > 0:  # Toxiproxy's rand.Int63n(2 * jitter) - jitter, drawn per chunk
            delay_ms += int(link.draw("jitter", self, state.chunks) * 2 * jitter) - jitter
        release = chunk.ts + delay_ms / 1000.0
        if await state.sleep_until(release):
            chunk = Chunk(chunk.data, release)
        yield chunk


@final
class BandwidthToxic(Toxic):
    """Limits the link to ``rate`` KB/s (1 KB = 1000 bytes), sent in at most 100 ms slices.
    Rate 0 holds all data until the toxic is changed or removed, as in Toxiproxy."""

    type = "bandwidth"
    attribute_defaults: ClassVar[dict[str, int]] = {"rate": 0}

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        rate = self.attributes["rate"]  # bytes per millisecond
        data = chunk.data
        if data is None:
            yield chunk
            return
        if rate <= 0:
            await state.sleep_until(math.inf)
            yield chunk
            return
        slice_size = rate * 100
        now = timers.now()
        # Back to back with the previous chunk, keep the schedule so that timer lateness is
        # paid back (as Toxiproxy carries its sleep error over); after an idle gap, restart
        # from now, so that idle time earns no burst.
        if state.clock < now and now - state.last_done > IDLE_GAP_S:
            state.clock = now
        view = memoryview(data)
        for offset in range(0, len(data), slice_size):
            piece = view[offset : offset + slice_size]
            state.clock += len(piece) / (rate * 1000.0)
            if not await state.sleep_until(state.clock):
                state.clock = timers.now()
                yield Chunk(bytes(view[offset:]), chunk.ts)
                return
            yield Chunk(bytes(piece), chunk.ts)
        state.last_done = timers.now()


@final
class SlowCloseToxic(Toxic):
    """Delays the close of the connection by ``delay`` ms after the source closes."""

    type = "slow_close"
    attribute_defaults: ClassVar[dict[str, int]] = {"delay": 0}

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        if chunk.data is None:
            await state.sleep_until(timers.now() + self.attributes["delay"] / 1000.0)
        yield chunk


@final
class TimeoutToxic(Toxic):
    """Drops all data; closes the connection after ``timeout`` ms without data (0 = never).
    Removing it closes the connections it was active on, as Toxiproxy's cleanup does."""

    type = "timeout"
    attribute_defaults: ClassVar[dict[str, int]] = {"timeout": 0}

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        if chunk.data is None:
            state.cancel_timer()
            yield chunk
            return
        self._arm(link, state)  # the data itself is dropped

    def bind(self, link: LinkView, state: ToxicState) -> None:
        if state.bound_version != self.version or state.timer is None:
            self._arm(link, state)
        super().bind(link, state)

    def unbind(self, link: LinkView, state: ToxicState, removed: bool) -> None:
        super().unbind(link, state, removed)
        if removed:
            link.connection.close()

    def _arm(self, link: LinkView, state: ToxicState) -> None:
        state.cancel_timer()
        timeout_ms = self.attributes["timeout"]
        if timeout_ms > 0:
            state.timer = link.loop.call_later(timeout_ms / 1000.0, link.connection.close)


@final
class ResetPeerToxic(Toxic):
    """Resets the connection (TCP RST) ``timeout`` ms after the first data or end of stream."""

    type = "reset_peer"
    attribute_defaults: ClassVar[dict[str, int]] = {"timeout": 0}

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        when = timers.now() + self.attributes["timeout"] / 1000.0
        if await state.sleep_until(when):
            link.connection.reset()
        else:
            yield chunk


@final
class SlicerToxic(Toxic):
    """Slices data into pieces of ``average_size`` +/- ``size_variation`` bytes, ``delay``
    microseconds apart."""

    type = "slicer"
    attribute_defaults: ClassVar[dict[str, int]] = {
        "average_size": 0,
        "size_variation": 0,
        "delay": 0,
    }

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        data = chunk.data
        average = self.attributes["average_size"]
        if data is None or average <= 0:
            yield chunk
            return
        state.chunks += 1
        bounds = self.cut(link.rng("slicer", self, state.chunks), 0, len(data))
        delay_s = self.attributes["delay"] / 1_000_000.0
        for start, end in itertools.pairwise(bounds):
            yield Chunk(data[start:end], chunk.ts)
            if delay_s and not await state.sleep_until(timers.now() + delay_s):
                if end < len(data):
                    yield Chunk(data[end:], chunk.ts)
                return

    def cut(self, rng: random.Random, start: int, end: int) -> list[int]:
        """Cut points as Toxiproxy's slicer chooses them: halve around a random offset until
        each piece is within ``size_variation`` of ``average_size``."""
        average = self.attributes["average_size"]
        variation = self.attributes["size_variation"]
        points = [start]
        pending = [(start, end)]
        while pending:
            lo, hi = pending.pop()
            if (hi - lo) - average <= variation or hi - lo < 2:
                points.append(hi)
                continue
            offset = rng.randrange(-variation, variation) if variation > 0 else 0
            mid = min(max(lo + (hi - lo) // 2 + offset, lo + 1), hi - 1)
            pending.append((mid, hi))
            pending.append((lo, mid))
        return points


@final
class LimitDataToxic(Toxic):
    """Passes ``bytes`` bytes, then closes the connection; the count survives updates."""

    type = "limit_data"
    attribute_defaults: ClassVar[dict[str, int]] = {"bytes": 0}

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        data = chunk.data
        if data is None:
            yield chunk
            return
        remaining = max(self.attributes["bytes"] - state.transmitted, 0)
        if remaining < len(data):
            data = data[:remaining]
        if data:
            state.transmitted += len(data)
            yield Chunk(data, chunk.ts)
        if self.attributes["bytes"] - state.transmitted <= 0:
            link.connection.close()


#: Toxiproxy's toxic types.
TOXIPROXY_TYPES: tuple[type[Toxic], ...] = (
    NoopToxic,
    LatencyToxic,
    BandwidthToxic,
    SlowCloseToxic,
    TimeoutToxic,
    ResetPeerToxic,
    SlicerToxic,
    LimitDataToxic,
)


def _json_number(value: float) -> float | int:
    """Render integral floats as integers, as Go's encoder does (``1``, not ``1.0``)."""
    return int(value) if float(value).is_integer() else value
