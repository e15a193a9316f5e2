"""Messages between a session and its supervisor: one JSON object per datagram of a
``SOCK_SEQPACKET`` socket pair, with file descriptors alongside (``SCM_RIGHTS``). A message
too big for one datagram (a large environment) travels in an anonymous file whose
descriptor is sent instead. Standard library only (the supervisor process imports it)."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Sequence
from typing import Any

INLINE_LIMIT = 32 * 1024
"""The largest message sent in the datagram itself, in bytes."""
MAX_FDS = 8
_IN_FILE = b"@"


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of sockets; neither end is inherited by child processes."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(message).encode()
    if len(data) <= INLINE_LIMIT:
        socket.send_fds(sock, [data], list(fds))
        return
    with tempfile.TemporaryFile() as body:
        body.write(data)
        body.flush()
        socket.send_fds(sock, [_IN_FILE], [body.fileno(), *fds])


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the descriptors that came with it (now the caller's to
    close); (None, []) once the other end has closed."""
    data, fds, _, _ = socket.recv_fds(sock, INLINE_LIMIT + 1, MAX_FDS)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    if data == _IN_FILE:
        body, *fds = fds
        try:
            data = os.pread(body, os.fstat(body).st_size, 0)
        finally:
            os.close(body)
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, got {data[:100]!r}")
    return message, fds
