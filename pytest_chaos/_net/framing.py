"""Early verdicts on HTTP framing, for requests h11 has not finished reading.

h11 judges a request head once its blank line has arrived, and a chunked body as its bytes
come; a client that sends a garbage line and no blank line, or announces a chunk far past
any body the API accepts, would otherwise hold its connection until a timeout. Go's server
(so Toxiproxy) answers 400 at once in both cases; these checks let the API do the same.
The rules are h11's own (RFC 9112), so nothing h11 would accept is refused early.
"""

from __future__ import annotations

import re
from typing import final

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
REQUEST_LINE = re.compile(_TOKEN + rb" [\x21-\x7e]+ HTTP/[0-9]\.[0-9]")
HEADER_LINE = re.compile(_TOKEN + rb":[ \t]*(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?[ \t]*")
#: A line of a header block that continues the one before (obsolete line folding).
_FOLD = (b" ", b"\t")
#: Go refuses chunk sizes past this with "http chunk length too large".
MAX_CHUNK_SIZE = 1 << 63
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]+")


@final
class HeadCheck:
    """Checks the complete lines of a request head as they arrive; ``check`` returns what
    is wrong, or None while every line so far could still make a valid head."""

    def __init__(self) -> None:
        self._checked = 0  # bytes of the head whose lines have been checked
        self._lines = 0

    def check(self, head: bytes) -> str | None:
        while (end := head.find(b"\n", self._checked)) >= 0:
            line = head[self._checked : end].removesuffix(b"\r")
            self._checked = end + 1
            self._lines += 1
            if self._lines == 1:
                if not line:
                    return "no request line received"
                if not REQUEST_LINE.fullmatch(line):
                    return f"illegal request line: {line[:100]!r}"
            elif not line:
                return None  # the blank line: the head is whole, and h11's to judge
            elif not line.startswith(_FOLD) and not HEADER_LINE.fullmatch(line):
                return f"illegal header line: {line[:100]!r}"
        return None


@final
class ChunkSizes:
    """Follows the chunk-size lines of a chunked body through its raw bytes; ``feed``
    returns a problem as soon as a size announces more than ``limit`` bytes in all.

    Only sizes are judged; anything else malformed is left to h11, and so is everything
    from the last chunk (size 0) on."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._line = bytearray()
        self._skip = 0  # bytes of chunk data (and its CRLF) still to pass over
        self._done = False

    def feed(self, data: bytes) -> ChunkProblem | None:
        at = 0
        while at < len(data) and not self._done:
            if self._skip:
                taken = min(self._skip, len(data) - at)
                self._skip -= taken
                at += taken
                continue
            end = data.find(b"\n", at)
            if end < 0:
                self._line += data[at:]
                self._done = len(self._line) > 1024  # not a size line h11 will accept
                return None
            self._line += data[at:end]
            at = end + 1
            problem = self._size_line(bytes(self._line))
            self._line.clear()
            if problem is not None:
                return problem
        return None

    def _size_line(self, line: bytes) -> ChunkProblem | None:
        digits = _CHUNK_SIZE.match(line)
        if digits is None:
            self._done = True  # h11 refuses it
            return None
        size = int(digits.group(), 16)
        if size >= MAX_CHUNK_SIZE:
            return ChunkProblem(400, "http chunk length too large")
        if size == 0:
            self._done = True
            return None
        self.total += size
        if self.total > self.limit:
            return ChunkProblem(413, f"the body announces {self.total} bytes")
        self._skip = size + 2  # the data, then its CRLF
        return None


@final
class ChunkProblem:
    """A chunked body refused early: the status to answer and why."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
