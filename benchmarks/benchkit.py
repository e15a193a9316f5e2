"""What every benchmark here shares: a minimal loopback HTTP server in a process of its own,
and a meter of the CPU other processes use.

``loopback_server()`` runs this file as a script: ``python3 benchmarks/benchkit.py
[BACKLOG]`` is the server (asyncio, uvloop when installed, on 127.0.0.1), which prints its
port and serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

HOST = "127.0.0.1"
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
BACKLOG = 100  # asyncio's own default


# -- the server --------------------------------------------------------------------------


class Server(asyncio.Protocol):
    """HTTP/1.1 keep-alive, ``200 ok`` to every request: GETs only (no bodies, each request
    ends with an empty line), pipelined ones answered together."""

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport, self.pending = transport, b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        count = self.pending.count(b"\r\n\r\n")
        if count:
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * count)


async def serve(backlog: int) -> None:
    """Listen on an ephemeral port of ``HOST``, print it, serve until stdin closes."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, HOST, 0, backlog=backlog)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


@contextlib.contextmanager
def loopback_server(backlog: int = BACKLOG, cpu: int | None = None) -> Iterator[tuple[str, int]]:
    """The server in a process of its own, out of reach of this process's GIL (on ``cpu``
    when given); yields its host and port, and ends it (closing its stdin) on the way out."""
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), str(backlog)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        if cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        yield HOST, int(process.stdout.readline())
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- noise -------------------------------------------------------------------------------


class CpuMeter:
    """Share of the machine's CPU used by other processes since it was made (Linux /proc;
    nothing elsewhere). This process's waited-for children (the server, once
    ``loopback_server`` has ended it) count as its own."""

    def __init__(self) -> None:
        self.wall, self.busy, self.own = time.monotonic(), _busy_seconds(), _own_seconds()

    def other_pct(self) -> float | None:
        busy = _busy_seconds()
        if busy is None or self.busy is None:
            return None
        wall = time.monotonic() - self.wall
        other = (busy - self.busy) - (_own_seconds() - self.own)
        return max(0.0, other) / (wall * (os.cpu_count() or 1)) * 100.0

    def summary(self) -> str:
        """``total N s``, and what other processes used meanwhile where that is known."""
        noise = self.other_pct()
        took = time.monotonic() - self.wall
        other = "" if noise is None else f"; other processes used {noise:.0f}% of the machine's CPU"
        return f"total {took:.0f} s{other}"


def _busy_seconds() -> float | None:
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    return (int(fields[1]) + int(fields[2]) + int(fields[3])) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Collect now, then keep the garbage collector off while timing (as ``timeit`` does),
    so that a collection does not land in one contender's rounds."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else BACKLOG))
