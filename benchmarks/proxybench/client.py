"""The benchmark's client workloads: plain blocking sockets, the same code for every path.

Each function takes the address to connect to (the server itself, or a proxy in front of
it) and returns raw measurements; the caller turns them into figures. Servers speak the
protocols described in ``servers.py``.
"""

from __future__ import annotations

import socket
import statistics
import struct
import threading
import time
from collections.abc import Sequence

Address = tuple[str, int]

HEADER = struct.Struct(">Q")
#: Size of the buffer the bulk client sends from (and the bandwidth client reads into).
CHUNK = 1 << 20
MESSAGE = b"m" * 64


def connect(address: Address) -> socket.socket:
    """A connected blocking socket with Nagle disabled."""
    sock = socket.create_connection(address, timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes or raise ``ConnectionError``."""
    data = bytearray()
    while len(data) < size:
        piece = sock.recv(size - len(data))
        if not piece:
            raise ConnectionError(f"peer closed after {len(data)} of {size} bytes")
        data += piece
    return bytes(data)


def bulk_seconds(sink: Address, total: int) -> float:
    """Send ``total`` bytes to the sink in 1 MiB writes; seconds until it acknowledged all."""
    payload = memoryview(b"b" * CHUNK)
    with connect(sink) as sock:
        start = time.perf_counter()
        sock.sendall(HEADER.pack(total))
        remaining = total
        while remaining:
            size = min(remaining, CHUNK)
            sock.sendall(payload[:size])
            remaining -= size
        if recv_exact(sock, 1) != b"k":
            raise ConnectionError("the sink did not acknowledge the transfer")
        return time.perf_counter() - start


def round_trips_us(echo: Address, count: int, warmup: int) -> list[float]:
    """Round-trip times (µs) of 64-byte messages over one persistent connection."""
    times: list[float] = []
    size = len(MESSAGE)
    with connect(echo) as sock:
        for index in range(warmup + count):
            start = time.perf_counter_ns()
            sock.sendall(MESSAGE)
            received = 0
            while received < size:
                piece = sock.recv(size - received)
                if not piece:
                    raise ConnectionError("the echo server closed the connection")
                received += len(piece)
            if index >= warmup:
                times.append((time.perf_counter_ns() - start) / 1000.0)
    return times


def _connect_echo_close(echo: Address, count: int, errors: list[BaseException]) -> None:
    """``count`` times: connect, one 64-byte echo, close."""
    try:
        for _ in range(count):
            with connect(echo) as sock:
                sock.sendall(MESSAGE)
                recv_exact(sock, len(MESSAGE))
    except BaseException as error:
        errors.append(error)


def connections_per_s(echo: Address, count: int, clients: int) -> float:
    """New connections per second: ``clients`` threads, ``count`` connections in all, each
    one connect + one 64-byte echo + close."""
    errors: list[BaseException] = []
    per_client = max(count // clients, 1)
    threads = [
        threading.Thread(target=_connect_echo_close, args=(echo, per_client, errors))
        for _ in range(clients)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return per_client * clients / elapsed


def download_seconds(source: Address, total: int) -> float:
    """Ask the source for ``total`` bytes; seconds from the request to the last byte."""
    buffer = memoryview(bytearray(CHUNK))
    with connect(source) as sock:
        start = time.perf_counter()
        sock.sendall(HEADER.pack(total))
        remaining = total
        while remaining:
            got = sock.recv_into(buffer, min(remaining, CHUNK))
            if not got:
                raise ConnectionError(f"the source closed with {remaining} bytes missing")
            remaining -= got
        return time.perf_counter() - start


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)
