"""Loopback echo, sink and source servers for the proxy benchmark, run as a subprocess.

``python benchmarks/proxybench/servers.py`` binds three listeners on 127.0.0.1 (ephemeral
ports), prints ``PORTS <echo> <sink> <source>`` on one line, and serves until its standard
input closes (so it never outlives the benchmark). Each connection gets a thread with plain
blocking sockets, so every path measured (direct, embedded, real Toxiproxy) meets the same
server code.

Protocols:

- echo: every byte received is sent back.
- sink: repeated transfers; each is an 8-byte big-endian length ``n``, then ``n`` bytes,
  answered with one byte ``b"k"`` once all ``n`` have been read.
- source: repeated requests; each is an 8-byte big-endian length ``n``, answered with ``n``
  bytes.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Callable

#: Size of the buffers the sink reads into and the source writes from.
BUFFER_SIZE = 1 << 20
HEADER = struct.Struct(">Q")

Handler = Callable[[socket.socket], None]


def recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Read exactly ``size`` bytes, or None if the peer closed first."""
    data = bytearray()
    while len(data) < size:
        piece = sock.recv(size - len(data))
        if not piece:
            return None
        data += piece
    return bytes(data)


def serve_echo(sock: socket.socket) -> None:
    """Send back everything received, until the peer closes."""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        sock.sendall(data)


def serve_sink(sock: socket.socket) -> None:
    """Swallow length-prefixed transfers, acknowledging each with one byte."""
    buffer = memoryview(bytearray(BUFFER_SIZE))
    while True:
        header = recv_exact(sock, HEADER.size)
        if header is None:
            return
        remaining = HEADER.unpack(header)[0]
        while remaining:
            got = sock.recv_into(buffer, min(remaining, BUFFER_SIZE))
            if not got:
                return
            remaining -= got
        sock.sendall(b"k")


def serve_source(sock: socket.socket) -> None:
    """Answer each 8-byte length request with that many bytes."""
    payload = memoryview(b"s" * BUFFER_SIZE)
    while True:
        header = recv_exact(sock, HEADER.size)
        if header is None:
            return
        remaining = HEADER.unpack(header)[0]
        while remaining:
            size = min(remaining, BUFFER_SIZE)
            sock.sendall(payload[:size])
            remaining -= size


def _handle(sock: socket.socket, handler: Handler) -> None:
    try:
        with sock:
            handler(sock)
    except OSError:
        pass


def _accept_loop(listener: socket.socket, handler: Handler) -> None:
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        configure(sock)
        threading.Thread(target=_handle, args=(sock, handler), daemon=True).start()


def configure(sock: socket.socket) -> None:
    """Disable Nagle; kernel buffer sizes stay autotuned, as for any server."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def listen(handler: Handler) -> int:
    """Start a listener for ``handler`` on an ephemeral loopback port; return the port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    threading.Thread(target=_accept_loop, args=(listener, handler), daemon=True).start()
    return int(listener.getsockname()[1])


def main() -> None:
    """Serve until standard input closes."""
    ports = [listen(handler) for handler in (serve_echo, serve_sink, serve_source)]
    print("PORTS", *ports, flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
