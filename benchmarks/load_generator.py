"""How fast the load generator sends on schedule (issue 6), against closed-loop clients
measured in the same run against the same server.

The server is a minimal HTTP/1.1 keep-alive server answering ``200 ok`` to every request,
in a process of its own (asyncio, uvloop when installed) on 127.0.0.1, so it does not share
this process's GIL.

References, closed loop (each connection sends its next request as soon as the previous
answer is in, as fast as it can), each in a thread with an event loop of its own, as the
generator runs:

- raw asyncio: a ``Protocol`` per connection writing a fixed request and counting answers;
  the ceiling of this machine and this server, without any HTTP client;
- httpx lanes: ``LANES`` ``httpx.AsyncHTTPTransport`` objects with one connection each, the
  same requests the generator sends, without a schedule: the generator's own ceiling;
- the same lanes through ``httpx.AsyncClient.send``, and one ``httpx.AsyncClient`` shared by
  64 concurrent requests: the two designs the generator does not use, for the record.

Then the generator itself, ``Load.http(url, rps=R, duration_s=D)`` for R in 1,000, 2,000
and 3,000, each reporting the achieved rate (samples over the time from the first intended
start to the last answer), its ratio to R, the schedule lag (actual start minus intended
start: the schedule error) at p50/p99/max, the latency from the intended start at p50/p99,
errors, and the most lanes open at once. Last, a max-rate probe: a rate the generator cannot
keep (``--probe-rps``), stopped after D seconds; what it completed per second is its
maximum, compared with the closed-loop references.

Target (exit code 1 when missed): at 2,000 requests/s the generator sustains the rate —
achieved >= 99% of it, no errors, and schedule lag p99 <= 20 ms (a generator that cannot
keep up falls further behind every second, so its lag grows without bound).

    python3 benchmarks/load_generator.py [--quick] [--duration 5] [--rates 1000,2000,3000]
                                         [--probe-rps 6000] [--no-reference] [--no-uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx

import pytest_chaos.steady.load as load_module
from pytest_chaos.steady.load import Load
from pytest_chaos.steady.metrics import Metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import CpuMeter, loopback_server

TARGET_RPS = 2000
MIN_RATIO = 0.99
MAX_LAG_P99_MS = 20.0
LANES = 8


def in_own_loop(make: Callable[[], Coroutine[Any, Any, float]]) -> float:
    """Run a coroutine in a thread with a new event loop (uvloop when installed), as the
    generator runs its own."""
    result: list[float] = []

    def main() -> None:
        loop = load_module.new_event_loop()
        try:
            result.append(loop.run_until_complete(make()))
        finally:
            loop.close()

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    return result[0]


# -- closed-loop references --------------------------------------------------------------


class RawClient(asyncio.Protocol):
    """One connection sending a fixed GET after each complete answer."""

    REQUEST = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    ANSWER = len(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok")

    def __init__(self, until: float) -> None:
        self.until, self.count, self.received = until, 0, 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        transport.write(self.REQUEST)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        while self.received >= self.ANSWER:
            self.received -= self.ANSWER
            self.count += 1
            if time.monotonic() >= self.until:
                self.transport.close()
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.transport.write(self.REQUEST)


async def raw_asyncio(host: str, port: int, connections: int, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    until = began + seconds
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(lambda: RawClient(until), host, port)
        clients.append(client)
    await asyncio.gather(*(client.done for client in clients))
    return sum(client.count for client in clients) / (time.monotonic() - began)


async def httpx_lanes(url: str, lanes: int, seconds: float, client: bool) -> float:
    """``lanes`` closed loops, each with its own connection, sending the generator's
    request through the transport (as the generator does) or ``AsyncClient.send``."""
    count = 0
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(5.0)

    async def lane() -> None:
        nonlocal count
        if client:
            async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as c:
                request = c.build_request("GET", url)
                while time.monotonic() < until:
                    (await c.send(request)).raise_for_status()
                    count += 1
            return
        async with httpx.AsyncHTTPTransport(limits=limits, trust_env=False) as transport:
            request = httpx.Request("GET", url, extensions={"timeout": timeout.as_dict()})
            while time.monotonic() < until:
                response = await transport.handle_async_request(request)
                await response.aread()
                await response.aclose()
                count += 1

    began = time.monotonic()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return count / (time.monotonic() - began)


async def one_shared_client(url: str, concurrent: int, seconds: float) -> float:
    """One ``AsyncClient`` (a pool of up to ``concurrent`` connections), ``concurrent``
    closed loops sharing it."""
    count = 0
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrent, max_keepalive_connections=concurrent)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as shared:

        async def loop() -> None:
            nonlocal count
            while time.monotonic() < until:
                (await shared.get(url)).raise_for_status()
                count += 1

        began = time.monotonic()
        await asyncio.gather(*(loop() for _ in range(concurrent)))
        return count / (time.monotonic() - began)


# -- the generator -----------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


HEADER = (
    f"{'target rps':>10} {'achieved':>9} {'ratio':>6} {'lag p50':>8} {'lag p99':>8} "
    f"{'lag max':>8} {'lat p50':>8} {'lat p99':>8} {'svc p99':>8} {'errors':>6} {'lanes':>5}"
)


def row(target: float, metrics: Metrics, lanes: int) -> str:
    service = sorted(s.service_time_s * 1000 for s in metrics.samples)
    svc_p99 = service[max(0, -(-99 * len(service) // 100) - 1)] if service else None
    return (
        f"{target:>10,.0f} {metrics.throughput:>9,.0f} {metrics.throughput / target:>6.3f} "
        f"{fmt(metrics.lag_p50_ms):>8} {fmt(metrics.lag_p99_ms):>8} "
        f"{fmt(metrics.lag_max_ms):>8} {fmt(metrics.p50_ms):>8} {fmt(metrics.p99_ms):>8} "
        f"{fmt(svc_p99):>8} {metrics.errors:>6} {lanes:>5}"
    )


def open_loop(url: str, rps: float, seconds: float) -> tuple[Metrics, int]:
    with Load.http(url, rps=rps, duration_s=seconds).start() as running:
        running.wait()
    return running.metrics(), running.peak_lanes


def probe(url: str, rps: float, seconds: float) -> tuple[Metrics, int, int]:
    """A rate beyond reach for ``seconds``, then stopped: what completed per second."""
    with Load.http(url, rps=rps, duration_s=seconds * 10).start() as running:
        time.sleep(seconds)
    return running.metrics(), running.peak_lanes, running.unsent


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (~12 s in all)")
    parser.add_argument("--duration", type=float, help="seconds per rate (default 5, quick 2)")
    parser.add_argument("--rates", default="1000,2000,3000", help="target rates, comma-separated")
    parser.add_argument("--probe-rps", type=float, default=6000.0, help="the max-rate probe")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the closed-loop references"
    )
    parser.add_argument(
        "--no-uvloop",
        action="store_true",
        help="the generator and the references on asyncio's own loop (the server keeps uvloop)",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.reference_s = 1.0 if args.quick else 2.0
    try:
        args.rates = [float(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates must be numbers separated by commas, got {args.rates!r}")
    if args.duration <= 0 or args.probe_rps <= 0 or min(args.rates) <= 0:
        parser.error("--duration, --rates and --probe-rps must be positive")
    if TARGET_RPS not in args.rates:
        args.rates.append(TARGET_RPS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meter = CpuMeter()
    try:
        import uvloop

        loop_name = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop_name = "asyncio (uvloop not installed)"
    if args.no_uvloop:
        load_module.new_event_loop = lambda fast=False: asyncio.new_event_loop()  # the load's loops
        loop_name = "asyncio's own loop (--no-uvloop)"
    print(
        f"Python {sys.version.split()[0]}, httpx {httpx.__version__}, {loop_name}, "
        f"{os.cpu_count()} CPUs; server: minimal HTTP/1.1 keep-alive in its own process",
        flush=True,
    )
    with loopback_server(backlog=512) as (host, port):
        url = f"http://{host}:{port}/"
        Load.http(url, rps=500, duration_s=0.5).run()  # warm up: imports, server, caches
        reference: dict[str, float] = {}
        if not args.no_reference:
            seconds = args.reference_s
            print(f"\nclosed loop, as fast as it goes ({seconds:g} s each)")
            cases: list[tuple[str, Callable[[], Coroutine[Any, Any, float]]]] = [
                ("raw asyncio, 1 connection", lambda: raw_asyncio(host, port, 1, seconds)),
                (
                    f"raw asyncio, {LANES} connections",
                    lambda: raw_asyncio(host, port, LANES, seconds),
                ),
                (
                    f"httpx lanes (transport), {LANES}",
                    lambda: httpx_lanes(url, LANES, seconds, client=False),
                ),
                (
                    f"httpx lanes (AsyncClient.send), {LANES}",
                    lambda: httpx_lanes(url, LANES, seconds, client=True),
                ),
                ("one AsyncClient, 64 concurrent", lambda: one_shared_client(url, 64, seconds)),
            ]
            for label, make in cases:
                reference[label] = in_own_loop(make)
                print(f"  {label:<40} {reference[label]:>8,.0f} req/s", flush=True)

        print(f"\nopen loop: Load.http(url, rps=R, duration_s={args.duration:g}); times in ms")
        print(HEADER)
        results: dict[float, tuple[Metrics, int]] = {}
        for rate in args.rates:
            results[rate] = open_loop(url, rate, args.duration)
            print(row(rate, *results[rate]), flush=True)
        probed, lanes, unsent = probe(url, args.probe_rps, args.duration)
        print(row(args.probe_rps, probed, lanes) + f"   (probe: stopped, {unsent:,} unsent)")

    best = probed.throughput
    if reference:
        print("\nthe generator's maximum (probe) against the closed-loop references:")
        for label, rate in reference.items():
            print(f"  {label:<40} {best / rate:>6.2f}x")
    metrics, _ = results[TARGET_RPS]
    lag = metrics.lag_p99_ms if metrics.lag_p99_ms is not None else float("inf")
    ratio = metrics.throughput / TARGET_RPS
    ok = ratio >= MIN_RATIO and metrics.errors == 0 and lag <= MAX_LAG_P99_MS
    print(
        f"\ntarget: >= {TARGET_RPS:,} requests/s sustained with schedule error reported: "
        f"achieved {metrics.throughput:,.0f}/s ({ratio:.3f} of the rate, needs "
        f">= {MIN_RATIO}), {metrics.errors} errors, schedule lag p50 "
        f"{fmt(metrics.lag_p50_ms)} / p99 {fmt(metrics.lag_p99_ms)} / max "
        f"{fmt(metrics.lag_max_ms)} ms (p99 needs <= {MAX_LAG_P99_MS:g}) "
        f"{'PASS' if ok else 'FAIL'}"
    )
    print(meter.summary())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
