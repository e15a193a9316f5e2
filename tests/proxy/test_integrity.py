"""Integrity and load through the embedded server: a gibibyte streamed with and without
toxics, hashed on both ends; a thousand concurrent echo connections.

Slow (seconds each, not minutes) but part of every CI run.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import resource
import time
from collections.abc import Iterator

import pytest

from ..servers import ApiServer
from .helpers import LOOPBACK, Api, HashSink, Proxy, parse_address

pytestmark = pytest.mark.slow

GIB = 1 << 30
BLOCK = 1 << 20


@pytest.fixture
def api(embedded_server: ApiServer) -> Iterator[Api]:
    embedded_server.clear()
    with embedded_server.client() as http:
        yield Api(http)
    embedded_server.clear()


def stream_blocks(total: int, seed: int) -> Iterator[memoryview]:
    """``total`` bytes of deterministic data, one reused 1 MiB buffer at a time.

    Block ``i`` is a random base block rotated by a block-dependent offset, starting with
    ``i`` itself, so no two blocks are alike and a swapped, lost or repeated piece changes
    the hash. Cheap enough (two memcpy a block) not to be the bottleneck.
    """
    base = random.Random(seed).randbytes(BLOCK)
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    for index in range(total // BLOCK):
        offset = (index * 104_729) % BLOCK
        view[: BLOCK - offset] = base[offset:]
        view[BLOCK - offset :] = base[:offset]
        view[:8] = index.to_bytes(8, "big")
        yield view


def send_through(proxy: Proxy, sink: HashSink, total: int) -> tuple[str, float]:
    """Stream ``total`` bytes through ``proxy`` into ``sink``; check the sink's count and
    hash against the sender's, and return the hash and the seconds it took."""
    expected = hashlib.sha256()
    started = time.perf_counter()
    with proxy.connect(timeout=60) as client:
        for block in stream_blocks(total, seed=total):
            expected.update(block)
            client.sendall(block)
    result = sink.result(timeout=120)
    elapsed = time.perf_counter() - started
    assert result.bytes == total
    assert result.sha256 == expected.hexdigest()
    return result.sha256, elapsed


def report(what: str, total: int, elapsed: float) -> None:
    print(f"\n{what}: {total / GIB:.0f} GiB in {elapsed:.2f} s ({total / elapsed / 1e6:.0f} MB/s)")


def test_gibibyte_arrives_intact(api: Api) -> None:
    with HashSink() as sink:
        proxy = api.create_proxy(sink.address, name="integrity")
        _, elapsed = send_through(proxy, sink, GIB)
    report("no toxic", GIB, elapsed)


def test_gibibyte_arrives_intact_through_latency_and_slicer(api: Api) -> None:
    with HashSink() as sink:
        proxy = api.create_proxy(sink.address, name="integrity")
        proxy.add_toxic("latency", "upstream", latency=1)
        proxy.add_toxic("slicer", "upstream", average_size=32768, size_variation=8192, delay=0)
        assert [toxic["type"] for toxic in proxy.toxics()] == ["latency", "slicer"]
        _, elapsed = send_through(proxy, sink, GIB)
    report("latency 1 ms + slicer 32 KiB", GIB, elapsed)


# -- many connections ---------------------------------------------------------------------------

CONNECTIONS = 1000


def raise_open_file_limit(needed: int, pid: int = 0) -> None:
    """Raise the soft RLIMIT_NOFILE of process ``pid`` (0: this one) to its hard limit if
    ``needed`` descriptors exceed it; skip if even the hard limit is too low."""
    if pid and not hasattr(resource, "prlimit"):
        return  # not Linux: leave the server as it is
    limit = resource.RLIMIT_NOFILE
    soft, hard = resource.prlimit(pid, limit) if pid else resource.getrlimit(limit)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if pid:
            resource.prlimit(pid, limit, (hard, hard))
        else:
            resource.setrlimit(limit, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        pytest.skip(f"needs {needed} open files; the hard limit is {hard}")


class EchoServer:
    """An asyncio echo server that counts how many connections it holds at once, and echoes
    only once ``expected`` connections are open, so that they really are concurrent."""

    def __init__(self, expected: int) -> None:
        self.open = 0
        self.most_open = 0
        self.expected = expected
        self._all_open = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        if self.open == self.expected:
            self._all_open.set()
        try:
            await self._all_open.wait()
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()


async def echo_all(address: str, payloads: list[bytes]) -> list[bytes]:
    """Open one connection per payload; once all are open, each sends its payload and
    reads it back."""
    all_open = asyncio.Event()
    opened = 0

    async def echo_one(payload: bytes) -> bytes:
        nonlocal opened
        reader, writer = await asyncio.open_connection(*parse_address(address))
        try:
            opened += 1
            if opened == len(payloads):
                all_open.set()
            await all_open.wait()
            writer.write(payload)
            await writer.drain()
            return await reader.readexactly(len(payload))
        finally:
            writer.close()

    return await asyncio.wait_for(asyncio.gather(*map(echo_one, payloads)), timeout=60)


def test_thousand_concurrent_connections(embedded_server: ApiServer, api: Api) -> None:
    # this process holds the clients and the echo server's sockets; the proxy, both again
    raise_open_file_limit(2 * CONNECTIONS + 256)
    raise_open_file_limit(2 * CONNECTIONS + 256, pid=embedded_server.process.pid)
    payloads = [
        b"%06d:" % i + random.Random(i).randbytes(100 + i % 900) for i in range(CONNECTIONS)
    ]

    async def run() -> list[bytes]:
        upstream = EchoServer(CONNECTIONS)
        server = await asyncio.start_server(upstream.handle, LOOPBACK, 0, backlog=CONNECTIONS)
        async with server:
            port = server.sockets[0].getsockname()[1]
            proxy = api.create_proxy(f"{LOOPBACK}:{port}", name="load")

            results = await echo_all(proxy.listen, payloads)
            assert upstream.most_open == CONNECTIONS
            return results

    started = time.perf_counter()
    results = asyncio.run(run())
    elapsed = time.perf_counter() - started
    assert results == payloads
    print(f"\n{CONNECTIONS} concurrent echo connections in {elapsed:.2f} s")
