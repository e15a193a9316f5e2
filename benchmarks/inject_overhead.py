"""What in-process faults cost the calls they do not strike (issue 5), against the bare call
in the same run.

Function faults: a trivial ``add(a, b)``, sync and async, called bare, through a plain
``*args, **kwargs`` pass-through wrapper (the floor any Python decorator pays), and
decorated with ``ChaosMonkey(...).chaos(error=ValueError)`` with the monkey disabled and
enabled at ``rate=0`` (every call is considered and counted, none is struck). Async
variants await the function inside one coroutine.

HTTP faults, per request: ``ChaosTransport.handle_request`` in front of a trivial inner
transport that returns a fixed response, with no rules, with one rule that matches nothing
(``host="nowhere.invalid"``, so the match path runs), and with that rule while the monkey is
disabled, against the inner transport called directly; the same for
``AsyncChaosTransport``. Then end to end: ``httpx.Client`` bare against
``httpx.Client(transport=ChaosHTTP(...).transport())`` (no rules, and the non-matching rule),
keep-alive GETs to a minimal HTTP/1.1 server on 127.0.0.1 in a process of its own (asyncio,
uvloop when installed), so that it does not share this process's GIL. The client and the
server share one CPU for that part (``--no-pin``: not pinned; Linux only): on a virtual
machine a wake-up across CPUs costs tens of microseconds, which would swamp the difference.

Every group runs in rounds; in each round every case runs once, the order rotating, so
machine noise spreads over all cases. Figures are medians over rounds; "extra" is the
median of the per-round differences from the bare call. The garbage collector is off
during the in-process loops, as ``timeit`` does. The run ends with the share of the
machine's CPU that other processes used meanwhile (Linux).

Target (exit code 1 when missed): the disabled sync decorator adds at most 150 ns per call.

    python3 benchmarks/inject_overhead.py [--quick] [--rounds 10] [--calls 200000]
                                          [--requests 2000] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, TypeVar

import httpx

from pytest_chaos.inject import ChaosConfig, ChaosHTTP, ChaosMonkey

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import CpuMeter, loopback_server, no_gc

TARGET_DISABLED_NS = 150.0
NOWHERE = "nowhere.invalid"

_T = TypeVar("_T")


# -- what is measured --------------------------------------------------------------------


def add(a: int, b: int) -> int:
    return a + b


async def add_async(a: int, b: int) -> int:
    return a + b


def pass_through(func: Callable[..., _T]) -> Callable[..., _T]:
    """The cheapest general decorator: what any wrapper taking ``*args, **kwargs`` costs."""

    def wrapper(*args: Any, **kwargs: Any) -> _T:
        return func(*args, **kwargs)

    return wrapper


def pass_through_async(func: Callable[..., Awaitable[_T]]) -> Callable[..., Awaitable[_T]]:
    async def wrapper(*args: Any, **kwargs: Any) -> _T:
        return await func(*args, **kwargs)

    return wrapper


def monkey(enabled: bool) -> ChaosMonkey:
    return ChaosMonkey(ChaosConfig(enabled=enabled), seed=1)


class FixedTransport(httpx.BaseTransport):
    """An inner transport that answers every request with the same response, instantly."""

    def __init__(self) -> None:
        self.response = httpx.Response(200, content=b"ok")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.response


class AsyncFixedTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.response = httpx.Response(200, content=b"ok")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.response


def chaos_http(rule: bool, enabled: bool = True) -> ChaosHTTP:
    """A ChaosHTTP as the fixture makes it (its monkey on, striking every matching request),
    with one rule that matches no request here, or none; ``enabled=False`` switches it off."""
    faults = ChaosHTTP(ChaosMonkey(ChaosConfig(enabled=enabled, failure_rate=1.0), seed=1))
    if rule:
        faults.status(503, host=NOWHERE)
    return faults


# -- timing loops (identical for every case of a group, so their own cost cancels) --------


def time_calls(func: Callable[[int, int], Any], calls: int) -> float:
    """ns per ``func(1, 2)``."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in repeat(None, calls):
        func(1, 2)
    return (clock() - start) / calls


async def _time_awaits(func: Callable[[int, int], Awaitable[Any]], calls: int) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in repeat(None, calls):
        await func(1, 2)
    return (clock() - start) / calls


def time_requests(
    handle: Callable[[httpx.Request], httpx.Response], request: httpx.Request, calls: int
) -> float:
    """ns per ``handle(request)``."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in repeat(None, calls):
        handle(request)
    return (clock() - start) / calls


async def _time_async_requests(
    handle: Callable[[httpx.Request], Awaitable[httpx.Response]],
    request: httpx.Request,
    calls: int,
) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in repeat(None, calls):
        await handle(request)
    return (clock() - start) / calls


# -- rounds and results ------------------------------------------------------------------


@dataclass
class Case:
    label: str
    run: Callable[[], float]  # one timed batch: per-call cost, in the group's unit
    samples: list[float]


@dataclass
class Group:
    title: str
    unit: str  # "ns" or "µs"
    cases: list[Case]  # the first is the reference (the bare call)

    def measure(self, rounds: int, warmup: bool = True) -> None:
        if warmup:
            for case in self.cases:
                case.run()
        for round_ in range(rounds):
            shift = round_ % len(self.cases)
            for case in self.cases[shift:] + self.cases[:shift]:
                case.samples.append(case.run())

    def extra(self, case: Case) -> float:
        """Median of the per-round differences from the reference."""
        bare = self.cases[0].samples
        return statistics.median(s - b for s, b in zip(case.samples, bare, strict=True))

    def ratio(self, case: Case) -> float:
        return statistics.median(case.samples) / statistics.median(self.cases[0].samples)

    def format(self) -> str:
        unit = self.unit
        width = max(len(case.label) for case in self.cases) + 2
        lines = [
            self.title,
            f"{'case':<{width}}{unit + '/call':>10}{'min':>10}{'max':>10}{'extra ' + unit:>12}"
            f"{'ratio':>9}",
        ]
        digits = 1 if unit == "ns" else 2
        for index, case in enumerate(self.cases):
            extra = "-" if index == 0 else f"{self.extra(case):+.{digits}f}"
            lines.append(
                f"{case.label:<{width}}{statistics.median(case.samples):>10.{digits}f}"
                f"{min(case.samples):>10.{digits}f}{max(case.samples):>10.{digits}f}"
                f"{extra:>12}{self.ratio(case):>8.2f}x"
            )
        return "\n".join(lines)


def in_process(label: str, run: Callable[[], float]) -> Case:
    def timed() -> float:
        with no_gc():
            return run()

    return Case(label, timed, [])


def function_groups(calls: int, loop: asyncio.AbstractEventLoop) -> list[Group]:
    off, on = monkey(False), monkey(True)
    sync_cases = [
        ("bare add(1, 2)", add),
        ("pass-through *args/**kwargs wrapper", pass_through(add)),
        ("@chaos, monkey disabled", off.chaos(error=ValueError)(add)),
        ("@chaos, enabled, rate=0", on.chaos(error=ValueError, rate=0)(add)),
    ]
    async_cases = [
        ("bare await add(1, 2)", add_async),
        ("pass-through *args/**kwargs wrapper", pass_through_async(add_async)),
        ("@chaos, monkey disabled", off.chaos(error=ValueError)(add_async)),
        ("@chaos, enabled, rate=0", on.chaos(error=ValueError, rate=0)(add_async)),
    ]

    def sync_run(func: Callable[[int, int], Any]) -> Callable[[], float]:
        return lambda: time_calls(func, calls)

    def async_run(func: Callable[[int, int], Awaitable[Any]]) -> Callable[[], float]:
        return lambda: loop.run_until_complete(_time_awaits(func, calls))

    return [
        Group(
            f"function fault, sync ({calls:,} calls a batch)",
            "ns",
            [in_process(label, sync_run(func)) for label, func in sync_cases],
        ),
        Group(
            f"function fault, async ({calls:,} awaits a batch, in one coroutine)",
            "ns",
            [in_process(label, async_run(func)) for label, func in async_cases],
        ),
    ]


def transport_groups(calls: int, loop: asyncio.AbstractEventLoop) -> list[Group]:
    request = httpx.Request("GET", "http://127.0.0.1:8080/items/1")
    inner, inner_async = FixedTransport(), AsyncFixedTransport()
    variants = [
        ("ChaosTransport, no rules", chaos_http(rule=False)),
        (f"ChaosTransport, 1 rule (host={NOWHERE})", chaos_http(rule=True)),
        ("ChaosTransport, 1 rule, monkey disabled", chaos_http(rule=True, enabled=False)),
    ]
    sync_cases = [("inner transport alone", inner.handle_request)] + [
        (label, faults.transport(inner).handle_request) for label, faults in variants
    ]
    async_cases = [("inner transport alone", inner_async.handle_async_request)] + [
        (
            label.replace("Chaos", "AsyncChaos"),
            faults.async_transport(inner_async).handle_async_request,
        )
        for label, faults in variants
    ]

    def sync_run(handle: Callable[[httpx.Request], httpx.Response]) -> Callable[[], float]:
        return lambda: time_requests(handle, request, calls)

    def async_run(
        handle: Callable[[httpx.Request], Awaitable[httpx.Response]],
    ) -> Callable[[], float]:
        return lambda: loop.run_until_complete(_time_async_requests(handle, request, calls))

    return [
        Group(
            f"HTTP transport, per handle_request ({calls:,} requests a batch, fixed inner response)",
            "ns",
            [in_process(label, sync_run(handle)) for label, handle in sync_cases],
        ),
        Group(
            f"HTTP transport, async, per handle_async_request ({calls:,} a batch)",
            "ns",
            [in_process(label, async_run(handle)) for label, handle in async_cases],
        ),
    ]


# -- end to end against a loopback server ------------------------------------------------


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """This process on ``cpu`` inside the block (None, or no affinity API: unpinned)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pick_cpu(pin: bool) -> int | None:
    """The CPU the client and the server share, or None when they are not to be pinned."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None
    return min(os.sched_getaffinity(0))


def time_gets(client: httpx.Client, url: str, requests: int) -> float:
    """µs per GET (response read whole)."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in repeat(None, requests):
        client.get(url)
    return (clock() - start) / requests / 1000


def end_to_end_group(url: str, requests: int, rounds: int) -> tuple[Group, list[httpx.Client]]:
    batch = max(1, requests // rounds)
    clients = [
        ("httpx.Client, bare", httpx.Client(trust_env=False)),
        (
            "Client(transport=ChaosHTTP.transport()), no rules",
            httpx.Client(transport=chaos_http(rule=False).transport(), trust_env=False),
        ),
        (
            f"Client(transport=ChaosHTTP.transport()), 1 rule (host={NOWHERE})",
            httpx.Client(transport=chaos_http(rule=True).transport(), trust_env=False),
        ),
    ]
    for _, client in clients:  # connect and warm up
        for _ in range(50):
            client.get(url).raise_for_status()

    def run(client: httpx.Client) -> Callable[[], float]:
        return lambda: time_gets(client, url, batch)

    cases = [Case(label, run(client), []) for label, client in clients]
    title = (
        f"end to end, keep-alive GET to 127.0.0.1 ({batch * rounds:,} requests per client, "
        f"{batch} a batch)"
    )
    return Group(title, "µs", cases), [client for _, client in clients]


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls (~3 s)")
    parser.add_argument("--rounds", type=int, help="rounds per group (default 10, quick 5)")
    parser.add_argument("--calls", type=int, help="calls per batch (default 200000, quick 50000)")
    parser.add_argument(
        "--requests", type=int, help="end-to-end requests per client (default 2000, quick 500)"
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not put the end-to-end client and server on one CPU",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (5 if args.quick else 10)
    args.calls = args.calls or (50_000 if args.quick else 200_000)
    args.requests = args.requests or (500 if args.quick else 2000)
    if min(args.rounds, args.calls, args.requests) < 1:
        parser.error("--rounds, --calls and --requests must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meter = CpuMeter()
    print(
        f"Python {sys.version.split()[0]}, httpx {httpx.__version__}; {args.rounds} rounds a "
        "group, order rotating; figures are medians over rounds, extra = median of the "
        "per-round differences from the first row",
        flush=True,
    )
    loop = asyncio.new_event_loop()
    try:
        groups = function_groups(args.calls, loop) + transport_groups(args.calls // 2, loop)
        for group in groups:
            group.measure(args.rounds)
            print(f"\n{group.format()}", flush=True)
    finally:
        loop.close()

    cpu = pick_cpu(not args.no_pin)
    with loopback_server(cpu=cpu) as (host, port), pinned(cpu):
        url = f"http://{host}:{port}/items/1"
        e2e, clients = end_to_end_group(url, args.requests, args.rounds)
        try:
            e2e.measure(args.rounds, warmup=False)
        finally:
            for client in clients:
                client.close()
    where = "unpinned" if cpu is None else f"client and server on CPU {cpu}"
    print(f"\n{e2e.format()}\n({where})")

    disabled = groups[0].extra(groups[0].cases[2])
    ok = disabled <= TARGET_DISABLED_NS
    print(
        f"\ntarget: disabled sync decorator <= {TARGET_DISABLED_NS:.0f} ns extra per call: "
        f"{disabled:+.1f} ns {'PASS' if ok else 'FAIL'}"
    )
    print(meter.summary())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
