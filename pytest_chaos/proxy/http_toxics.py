"""Toxics of the embedded proxy that Toxiproxy has not: HTTP faults between processes (its
users have asked for them for years: Shopify/toxiproxy#50, #118, #404), and a black hole.

- ``http_status`` (upstream): answers matching requests itself, with ``status`` (and
  ``Retry-After`` when ``retry_after`` > 0), without passing them on, then closes the
  connection (the answer says ``Connection: close``). ``method`` and ``path`` (a shell
  pattern) choose the requests, ``percent`` which share of those it strikes, each decision
  drawn from the proxy's seed and the request's identity;
- ``http_latency`` (downstream): holds each response's head for ``latency`` ms;
- ``http_truncate`` (downstream): passes each response's head and the first ``bytes``
  bytes of its body, then closes the connection;
- ``blackhole``: swallows everything, the end of the stream too, so that not even a close
  gets through; removing it closes the connections it held, as ``timeout`` does.

A real Toxiproxy answers ``invalid toxic type`` to each; the client says so plainly.
"""

from __future__ import annotations

import fnmatch
import http
from typing import ClassVar, final

from pytest_chaos.proxy.httpframe import Framer, Piece
from pytest_chaos.proxy.toxics import Chunk, LinkView, Pieces, Toxic, ToxicState


@final
class BlackholeToxic(Toxic):
    """Swallows every byte and the end of the stream: not even a close gets through.
    Removing it closes the connections it held. An extension: Toxiproxy has none."""

    type = "blackhole"

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        return
        yield  # an async generator that yields nothing: every chunk, and the end, vanish

    def unbind(self, link: LinkView, state: ToxicState, removed: bool) -> None:
        super().unbind(link, state, removed)
        if removed:
            link.connection.close()


class _HttpToxic(Toxic):
    """What the HTTP toxics share: the framer of their stream on each link, and what each
    does with every piece of a message (:meth:`act`)."""

    requests: ClassVar[bool] = False  # whether the toxic reads requests (else responses)

    async def pipe(self, link: LinkView, state: ToxicState, chunk: Chunk) -> Pieces:
        if chunk.data is None:
            yield chunk
            return
        if state.extra is None:
            state.extra = Framer(requests=self.requests)
        framer: Framer = state.extra
        for piece in framer.feed(chunk.data):
            async for out in self.act(link, state, piece, chunk.ts):
                yield out
            if link.connection.closed:
                return

    async def act(self, link: LinkView, state: ToxicState, piece: Piece, ts: float) -> Pieces:
        """What becomes of one piece: by default, it goes on."""
        if piece.data:
            yield Chunk(piece.data, ts)


@final
class HttpStatusToxic(_HttpToxic):
    """Answers ``percent`` % of the requests with ``method`` and a path matching ``path``
    (a shell pattern; both empty: any) with ``status`` (and ``Retry-After`` when
    ``retry_after`` > 0) in the server's place, then closes the connection. An extension,
    on the upstream stream."""

    type = "http_status"
    requests = True
    attribute_defaults: ClassVar[dict[str, int]] = {"status": 503, "retry_after": 0, "percent": 100}
    text_defaults: ClassVar[dict[str, str]] = {"method": "", "path": ""}
    limits: ClassVar[dict[str, tuple[int, int]]] = {"status": (100, 599), "percent": (0, 100)}

    async def act(self, link: LinkView, state: ToxicState, piece: Piece, ts: float) -> Pieces:
        head = piece.head
        if head is not None and self._strikes(link, state, head.method, head.path):
            link.connection.client.write(self._answer())
            link.connection.close()
            return
        async for out in super().act(link, state, piece, ts):
            yield out

    def _strikes(self, link: LinkView, state: ToxicState, method: str, path: str) -> bool:
        state.chunks += 1  # the request's ordinal on this connection names its draw
        wanted, pattern = self.text["method"], self.text["path"]
        if wanted and method.upper() != wanted.upper():
            return False
        if pattern and not fnmatch.fnmatchcase(path, pattern):
            return False
        share = self.attributes["percent"] / 100
        return share >= 1 or link.draw("http_status", self, state.chunks) < share

    def _answer(self) -> bytes:
        status = self.attributes["status"]
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Injected"
        body = f"chaos: injected HTTP {status}\n".encode()
        headers = [
            f"HTTP/1.1 {status} {reason}",
            "content-type: text/plain; charset=utf-8",
            f"content-length: {len(body)}",
            "connection: close",
            "x-chaos-fault: http_status",
        ]
        if self.attributes["retry_after"] > 0:
            headers.append(f"retry-after: {self.attributes['retry_after']}")
        return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


@final
class HttpLatencyToxic(_HttpToxic):
    """Holds each response's head for ``latency`` ms. An extension, on the downstream
    stream."""

    type = "http_latency"
    attribute_defaults: ClassVar[dict[str, int]] = {"latency": 0}

    async def act(self, link: LinkView, state: ToxicState, piece: Piece, ts: float) -> Pieces:
        if piece.head is not None:
            await state.sleep_until(ts + self.attributes["latency"] / 1000.0)
        async for out in super().act(link, state, piece, ts):
            yield out


@final
class HttpTruncateToxic(_HttpToxic):
    """Passes each response's head and the first ``bytes`` bytes of its body, then closes
    the connection. An extension, on the downstream stream."""

    type = "http_truncate"
    attribute_defaults: ClassVar[dict[str, int]] = {"bytes": 0}

    async def act(self, link: LinkView, state: ToxicState, piece: Piece, ts: float) -> Pieces:
        if piece.head is not None:
            state.transmitted = 0  # a new response: its body is counted afresh
        elif piece.kind == "body":
            allowed = self.attributes["bytes"] - state.transmitted
            if len(piece.data) >= allowed:
                if allowed > 0:
                    yield Chunk(piece.data[:allowed], ts)
                link.connection.close()
                return
            state.transmitted += len(piece.data)
        async for out in super().act(link, state, piece, ts):
            yield out


EXTENSIONS: tuple[type[Toxic], ...] = (
    BlackholeToxic,
    HttpStatusToxic,
    HttpLatencyToxic,
    HttpTruncateToxic,
)
