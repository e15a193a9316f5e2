"""Finding HTTP/1.1 messages in a stream of bytes, as they pass, without holding them back:
where each head ends (with what it says), where each body ends. The HTTP toxics use it to
act on whole requests and responses of a connection that a proxy only sees as bytes.

Bodies are framed as RFC 9112 says: ``Transfer-Encoding: chunked``, else
``Content-Length``, else (a response) until the connection closes; a response to ``HEAD``
and a ``1xx``, ``204`` or ``304`` has none. A stream that does not parse as HTTP is
*opaque* from there on: its bytes pass through as they come.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import final

#: A head longer than this is not HTTP as far as the framer cares.
MAX_HEAD = 64 * 1024
_REQUEST_LINE = re.compile(rb"\A([A-Z]{3,10}) (\S+) HTTP/1\.[01]\Z")
_STATUS_LINE = re.compile(rb"\AHTTP/1\.[01] (\d{3})(?: .*)?\Z")
#: How a request starts: what tells a connection that speaks HTTP from one that does not.
REQUEST_START = re.compile(rb"\A(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE|CONNECT) ")


@final
@dataclass(frozen=True)
class Head:
    """A message's head: a request's method and target, or a response's status."""

    raw: bytes
    method: str = ""
    target: str = ""
    status: int = 0

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.partition("?")[0]


@final
@dataclass(frozen=True)
class Piece:
    """What the framer found in the bytes fed to it: ``kind`` is ``head`` (``head`` set),
    ``body`` (bytes of the current body), ``end`` (the message ended here, no bytes) or
    ``opaque`` (bytes of a stream that is not HTTP)."""

    kind: str
    data: bytes = b""
    head: Head | None = None


@final
class Framer:
    """The messages of one direction of a connection: ``requests=True`` for what a client
    sends. A response framer asks ``next_method()`` which request a response answers (its
    method: ``HEAD`` means no body), as the messages come in order."""

    def __init__(self, *, requests: bool, methods: Iterator[str] | None = None) -> None:
        self.requests = requests
        self._methods = methods
        self._buffer = b""
        self._mode = (
            "head"  # head, length, chunk-size, chunk-data, chunk-end, trailers, close, opaque
        )
        self._remaining = 0

    @property
    def opaque(self) -> bool:
        return self._mode == "opaque"

    def feed(self, data: bytes) -> Iterator[Piece]:
        """The pieces ``data`` holds, in order; bytes of an unfinished head wait for more."""
        self._buffer += data
        while self._buffer:
            if self._mode == "opaque":
                yield Piece("opaque", self._take(len(self._buffer)))
            elif self._mode in ("length", "chunk-data"):
                piece = self._take(min(self._remaining, len(self._buffer)))
                self._remaining -= len(piece)
                yield Piece("body", piece)
                if not self._remaining:
                    if self._mode == "length":
                        yield from self._end()
                    else:
                        self._mode = "chunk-end"
            elif self._mode == "close":
                yield Piece("body", self._take(len(self._buffer)))
            else:  # a head, or a line of a chunked body: up to its delimiter
                head = self._mode == "head"
                delimiter = b"\r\n\r\n" if head else b"\r\n"
                end = self._buffer.find(delimiter)
                if end < 0:
                    if len(self._buffer) > MAX_HEAD:
                        self._mode = "opaque"
                        continue
                    return
                text = self._take(end + len(delimiter))
                yield from self._head(text) if head else self._chunked_line(text)

    def end_of_stream(self) -> Iterator[Piece]:
        """The stream ended: a body that runs until the close ends here."""
        if self._mode == "close":
            yield from self._end()

    def _take(self, size: int) -> bytes:
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken

    def _head(self, raw: bytes) -> Iterator[Piece]:
        lines = raw[:-4].split(b"\r\n")
        matched = (_REQUEST_LINE if self.requests else _STATUS_LINE).match(lines[0])
        if matched is None:
            self._mode = "opaque"
            yield Piece("opaque", raw)
            return
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if self.requests:
            head = Head(raw, method=matched.group(1).decode(), target=matched.group(2).decode())
            bodiless = False
        else:
            head = Head(raw, status=int(matched.group(1)))
            method = next(self._methods, "") if self._methods is not None else ""
            bodiless = method == "HEAD" or head.status < 200 or head.status in (204, 304)
        yield Piece("head", raw, head)
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        length = headers.get(b"content-length", b"")
        if bodiless:
            yield from self._end()
        elif chunked:
            self._mode = "chunk-size"
        elif length.isdigit():
            self._remaining = int(length)
            self._mode = "length"
            if not self._remaining:
                yield from self._end()
        elif self.requests:
            yield from self._end()
        else:
            self._mode = "close"

    def _chunked_line(self, line: bytes) -> Iterator[Piece]:
        yield Piece("body", line)
        if self._mode == "chunk-end":
            self._mode = "chunk-size"
        elif self._mode == "chunk-size":
            size = line.split(b";", 1)[0].strip()
            try:
                self._remaining = int(size, 16)
            except ValueError:
                self._mode = "opaque"
                return
            self._mode = "chunk-data" if self._remaining else "trailers"
        elif line == b"\r\n":  # the empty line that ends the trailers
            yield from self._end()

    def _end(self) -> Iterator[Piece]:
        self._mode = "head"
        yield Piece("end")
