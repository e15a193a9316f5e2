"""Toxic churn: the embedded proxy server against the real Toxiproxy, side by side, in one run.

Both servers run as subprocesses (``python -m pytest_chaos.proxy`` with uvloop, and
``$TOXIPROXY_SERVER``), driven only through their HTTP API, one new HTTP connection per
call (as ``http.client`` does), from this process. For each server in turn:

- **add/remove at chain length L** (10, 100, 1,000): a proxy with 4 live connections and L
  toxics (latency 0, noop, bandwidth 1 GB/s in turn, on both streams); then 200 times: add
  one toxic, remove it. Reported: the time to build the chain, and p50/p99 of the add and
  remove calls once it is built. An engine whose chain changes cost O(L) shows it here.
- **API latency under load with churn**: one connection streams through the proxy (4
  latency-0 toxics upstream) to a sink while this process makes 1,000 toxic changes (500
  adds, 500 removes, interleaved) on the same proxy, and goes on until the changes are
  done and at least 256 MiB [64 MiB] went through; p50/p99/max of those calls, and the
  throughput meanwhile.

Each server is measured ``--rounds`` times (2 by default), the order of the servers
alternating, and the figures are medians over rounds.

    python3 benchmarks/proxy_churn.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxybench.proxies import (
    ApiClient,
    ServerProcess,
    echo_sink_source,
    embedded_command,
    free_port,
    real_command,
    real_server_binary,
)

KINDS = [("latency", {"latency": 0}), ("noop", {}), ("bandwidth", {"rate": 1_000_000})]
LENGTHS = (10, 100, 1000)
CHANGES = 200
HEADER = struct.Struct(">Q")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(call: Any, *args: Any) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def add(api: ApiClient, name: str, index: int, stream: str | None = None) -> None:
    kind, attributes = KINDS[index % len(KINDS)]
    stream = stream or ("upstream" if index % 2 else "downstream")
    api.add_toxic("p", name, kind, stream, **attributes)


def chain_lengths(api: ApiClient, echo: tuple[str, int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for length in LENGTHS:
        listen = api.create_proxy("p", echo)
        live = [socket.create_connection(listen, timeout=10) for _ in range(4)]
        build = sum(timed(add, api, f"t{i}", i) for i in range(length))
        adds, removes = [], []
        for i in range(CHANGES):
            adds.append(timed(add, api, f"x{i}", i))
            removes.append(timed(api.remove_toxic, "p", f"x{i}"))
        for sock in live:  # the chain still passes data
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
            sock.close()
        api.call("DELETE", "/proxies/p")
        results[str(length)] = {
            "build_s": build,
            "add_p50_ms": percentile(adds, 0.5) * 1000,
            "add_p99_ms": percentile(adds, 0.99) * 1000,
            "remove_p50_ms": percentile(removes, 0.5) * 1000,
            "remove_p99_ms": percentile(removes, 0.99) * 1000,
        }
    return results


def churn_under_load(api: ApiClient, sink: tuple[str, int], size: int) -> dict[str, Any]:
    listen = api.create_proxy("p", sink)
    for i in range(4):
        api.add_toxic("p", f"base{i}", "latency", "upstream", latency=0)
    sock = socket.create_connection(listen, timeout=60)
    churning = threading.Event()
    churning.set()
    moved: list[float] = []

    def transfer() -> None:
        block = memoryview(b"x" * (1 << 20))
        started = time.perf_counter()
        sent = 0
        while churning.is_set() or sent < size:
            sock.sendall(HEADER.pack(len(block)))
            sock.sendall(block)
            assert sock.recv(1) == b"k"
            sent += len(block)
        moved.extend([sent, time.perf_counter() - started])

    sender = threading.Thread(target=transfer, daemon=True)
    sender.start()
    time.sleep(0.2)  # the stream is flowing before the first change
    calls: list[float] = []
    for i in range(1000):
        if i % 2 == 0:
            calls.append(timed(add, api, f"c{i // 2}", i // 2, "upstream"))
        else:
            calls.append(timed(api.remove_toxic, "p", f"c{i // 2}"))
    churning.clear()
    sender.join(300)
    sock.close()
    api.call("DELETE", "/proxies/p")
    return {
        "api_p50_ms": percentile(calls, 0.5) * 1000,
        "api_p99_ms": percentile(calls, 0.99) * 1000,
        "api_max_ms": max(calls) * 1000,
        "api_mean_ms": statistics.mean(calls) * 1000,
        "mb_per_s": moved[0] / moved[1] / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = (64 if args.quick else 256) << 20
    binary = real_server_binary()
    servers = {"embedded": lambda port: embedded_command(port, 1, True)}
    if binary is not None:
        servers = {"toxiproxy": lambda port: real_command(binary, port, 1), **servers}
    else:
        print("no real toxiproxy-server found: measuring the embedded server only")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    with echo_sink_source() as (echo, sink, _source):
        for number in range(args.rounds):
            order = list(servers)[:: 1 if number % 2 == 0 else -1]
            for name in order:
                port = free_port()
                with ServerProcess(servers[name](port), port) as api:
                    rounds[name].append(
                        {
                            "chain": chain_lengths(api, echo),
                            "load": churn_under_load(api, sink, size),
                        }
                    )
    report = {name: median_of(runs) for name, runs in rounds.items()}
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def median_of(runs: list[Any]) -> Any:
    """The median of each number over rounds, in the same nested shape."""
    if isinstance(runs[0], dict):
        return {key: median_of([run[key] for run in runs]) for key in runs[0]}
    return statistics.median(runs)


def print_report(report: dict[str, Any]) -> None:
    names = list(report)
    print("toxic add/remove on a proxy with 4 live connections (ms per call, p50 / p99)")
    print(f"{'chain':>6} " + "".join(f"{n:>46}" for n in names))
    for length in LENGTHS:
        row = []
        for name in names:
            r = report[name]["chain"][str(length)]
            row.append(
                f"build {r['build_s']:6.2f} s  add {r['add_p50_ms']:5.2f}/{r['add_p99_ms']:5.2f}"
                f"  rm {r['remove_p50_ms']:5.2f}/{r['remove_p99_ms']:5.2f}"
            )
        print(f"{length:>6} " + "".join(f"{cell:>46}" for cell in row))
    print("\nAPI calls while the stream flows, 1,000 toxic changes (ms)")
    for name in names:
        r = report[name]["load"]
        print(
            f"{name:>10}: p50 {r['api_p50_ms']:.2f}  p99 {r['api_p99_ms']:.2f}  "
            f"max {r['api_max_ms']:.2f}  throughput meanwhile {r['mb_per_s']:.0f} MB/s"
        )


if __name__ == "__main__":
    main()
