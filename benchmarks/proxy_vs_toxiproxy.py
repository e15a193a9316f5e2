"""The embedded proxy engine against the real Toxiproxy server, side by side, in one run.

Three paths carry the same client traffic to the same loopback echo, sink and source
servers: ``direct`` (no proxy), ``embedded`` (the pytest-chaos drop-in server,
``python -m pytest_chaos.proxy``, once with uvloop and once with ``--no-uvloop``) and
``toxiproxy`` (the real ``toxiproxy-server``: ``$TOXIPROXY_SERVER``, else
``~/go/bin/server``, else ``toxiproxy-server`` on PATH; without one, the run says so and
measures the other two). Each server runs as a subprocess with its default settings
(logging included, to a temporary file); proxies and toxics are created through its HTTP
API, as users do. The client is this process: plain blocking sockets, the same code for
every path.

Workloads, per round (MB = 10^6 bytes, KB = 1000 bytes; ``--quick`` sizes in brackets):

- bulk throughput: one connection sends 512 MiB [64 MiB] to a sink in 1 MiB writes, timed
  until the sink acknowledges the last byte; and the proxy server's CPU time (all threads,
  /proc) per GB moved, which shows its cost even when the client side is the bottleneck;
- round trips: 5000 [1000] 64-byte messages over one persistent connection, p50 and p99,
  and what the proxy adds to the direct path;
- new connections per second: connect, one 64-byte echo, close; 2000 [300] connections from
  one client, then 2000 [300] from 4 client threads at once;
- ``latency`` 50 ms downstream: 20 [40] round trips, each one's error against direct
  p50 + 50 ms;
- ``bandwidth`` 2000 KB/s downstream: the rate a 2 s [1 s] download achieves;
- bulk throughput through ``latency`` 10 ms on the upstream (data) direction, 256 MiB
  [32 MiB].

A full run has 5 rounds [1]; in each, every workload runs on every path in turn (the order
of the paths rotating), so that other work on the machine spreads over all paths instead
of landing on one. Figures are medians over rounds; latency errors pool all round trips.
The run ends with the share of the machine's CPU that other processes used meanwhile.

CPU placement (``--placement``; Linux, CPUs 0 and 1). The client and the echo, sink and
source servers always run on CPU 0. ``mixed`` (the default) runs a proxy server alone on
CPU 1 for the streaming workloads (bulk, bandwidth, bulk under latency), so that proxy and
endpoints work in parallel, and moves it onto CPU 0 for the interactive ones (round trips,
connections, latency toxic): on a virtual machine a wake-up across CPUs costs tens of
microseconds (a 64-byte ping-pong between two processes took about 5 µs on one CPU and
30-40 µs across two on the 2-vCPU machine this was written on), which would swamp the
~10 µs a proxy adds and make round-trip figures bimodal. ``split`` keeps the proxy on CPU 1
throughout, ``shared`` on CPU 0 throughout, ``none`` pins nothing. A Go server started on
one CPU runs with GOMAXPROCS=1.

    python3 benchmarks/proxy_vs_toxiproxy.py [--quick] [--json out.json] [--placement P]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
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
from proxybench.report import CpuMeter, format_table, format_targets, is_embedded
from proxybench.workloads import (
    FULL,
    QUICK,
    WORKLOADS,
    PathResult,
    Route,
    Servers,
    Sizes,
    Workload,
    finalize,
    warm_up,
)

SEED = 1
PY_SPY = ["py-spy", "record", "--native", "--rate", "500"]


@dataclass(frozen=True)
class Placement:
    """The CPUs of the client side, and of a proxy server per kind of workload."""

    name: str
    client: frozenset[int] | None
    streaming: frozenset[int] | None
    interactive: frozenset[int] | None
    text: str

    def proxy_cpus(self, workload: Workload) -> set[int] | None:
        """Where a proxy server runs during ``workload``."""
        cpus = self.streaming if workload.streaming else self.interactive
        return set(cpus) if cpus else None


CPU0, CPU1 = frozenset({0}), frozenset({1})
PLACEMENTS = {
    "mixed": Placement(
        "mixed",
        CPU0,
        CPU1,
        CPU0,
        "client and servers on CPU 0; proxy on CPU 1 for bulk, bandwidth and bulk under "
        "latency, on CPU 0 for round trips, connections and the latency toxic",
    ),
    "split": Placement("split", CPU0, CPU1, CPU1, "client and servers on CPU 0, proxy on CPU 1"),
    "shared": Placement("shared", CPU0, CPU0, CPU0, "client, servers and proxy all on CPU 0"),
    "none": Placement("none", None, None, None, "nothing pinned"),
}


@dataclass
class ProxyPlan:
    """A proxy path to measure: its result and the server process that serves it."""

    result: PathResult
    server: ServerProcess


@dataclass
class Profiler:
    """Attaches ``py-spy record --native`` to the embedded servers during the first round
    (``--profile DIR``): one file of collapsed stacks per path and workload. Native
    sampling pauses the server, so a profiled run's figures are perturbed: use them to see
    where the time goes, not as results."""

    directory: Path | None

    @contextlib.contextmanager
    def sample(self, plan: ProxyPlan | None, workload: str) -> Iterator[None]:
        """Sample ``plan``'s server (if embedded and profiling) while the block runs."""
        process = plan.server.process if plan is not None else None
        if self.directory is None or plan is None or process is None:
            yield
            return
        if not is_embedded(plan.result):
            yield
            return
        output = self.directory / f"{plan.result.name}-{workload}.txt"
        command = [*PY_SPY, "--pid", str(process.pid), "--format", "raw", "--output", str(output)]
        recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # let py-spy attach
        try:
            yield
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=30)


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- setting up ------------------------------------------------------------------------------


def choose_placement(name: str) -> tuple[Placement, str]:
    """The placement asked for (pinning this process now), or none when this machine cannot
    pin to CPUs 0 and 1."""
    placement = PLACEMENTS[name]
    if placement.client is None:
        return placement, placement.text
    available = os.sched_getaffinity(0)
    if not {0, 1} <= available:
        cpus = sorted(available)
        return PLACEMENTS["none"], f"nothing pinned (CPUs 0 and 1 not both available: {cpus})"
    os.sched_setaffinity(0, placement.client)
    return placement, placement.text


def embedded_plans(args: argparse.Namespace, cpus: set[int] | None) -> list[ProxyPlan]:
    """The embedded server, with uvloop (when installed) and without."""
    env, cwd = dict(os.environ), None
    if args.embedded_pythonpath:  # a copy of the package to A/B; -m puts the cwd first
        cwd = str(Path(args.embedded_pythonpath).resolve())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [cwd, env.get("PYTHONPATH")]))
    plans = []
    variants = [(True, "embedded-uvloop", "emb uvloop"), (False, "embedded-asyncio", "emb asyncio")]
    for uvloop, name, label in variants:
        if uvloop and importlib.util.find_spec("uvloop") is None:
            progress("uvloop is not installed: measuring the embedded server on asyncio only")
            continue
        port = free_port()
        server = ServerProcess(embedded_command(port, SEED, uvloop), port, cpus, env, cwd)
        plans.append(ProxyPlan(PathResult(name, label), server))
    return plans


def plan_proxies(args: argparse.Namespace, placement: Placement) -> list[ProxyPlan]:
    """The proxy paths to measure, each with the server process that provides it."""
    cpus = set(placement.streaming) if placement.streaming else None
    plans = embedded_plans(args, cpus)
    binary = real_server_binary()
    if binary is not None:
        port = free_port()
        server = ServerProcess(real_command(binary, port, SEED), port, cpus)
        plans.append(ProxyPlan(PathResult("toxiproxy", "toxiproxy"), server))
    selected = set(args.paths.split(",")) if args.paths else None
    return [plan for plan in plans if selected is None or plan.result.name in selected]


def describe_setup(args: argparse.Namespace, placement_text: str, plans: list[ProxyPlan]) -> str:
    """The header: mode, machine, placement, and each server's command line."""
    lines = [
        f"proxy_vs_toxiproxy: {'quick' if args.quick else 'full'} run, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.2f}",
        f"placement ({args.placement}): {placement_text}",
    ]
    lines += [f"{plan.result.label}: {' '.join(plan.server.command)}" for plan in plans]
    if not any(plan.result.name == "toxiproxy" for plan in plans):
        lines.append(
            "NOTE: no real toxiproxy-server ($TOXIPROXY_SERVER, ~/go/bin/server, PATH) "
            "measured: the ratios and the ratio targets are n/a"
        )
    return "\n".join(lines)


def create_proxies(api: ApiClient, servers: Servers) -> Servers:
    """One proxy in front of each server; return the proxies' addresses."""
    return Servers(
        echo=api.create_proxy("echo", servers.echo),
        sink=api.create_proxy("sink", servers.sink),
        source=api.create_proxy("source", servers.source),
    )


def fail(result: PathResult, error: BaseException, server: ServerProcess | None) -> None:
    """Record that a path broke; the run goes on without it."""
    result.error = f"{type(error).__name__}: {error}"
    log = server.log_tail() if server is not None else ""
    progress(f"{result.label} FAILED: {result.error}\n{log}")


def start_route(stack: contextlib.ExitStack, plan: ProxyPlan, servers: Servers) -> Route | None:
    """Start ``plan``'s server (stopped by ``stack``), create its proxies, warm them up."""
    try:
        api = stack.enter_context(plan.server)
        route = Route(plan.result, create_proxies(api, servers), api, plan.server.cpu_seconds)
        warm_up(route)
        return route
    except (OSError, RuntimeError) as error:
        fail(plan.result, error, plan.server)
        return None


# -- running ---------------------------------------------------------------------------------


@dataclass
class Run:
    """The paths of one run and how to measure them."""

    sizes: Sizes
    placement: Placement
    profiler: Profiler
    routes: list[tuple[Route, ProxyPlan | None]]

    def rounds(self) -> None:
        """Every round: every workload on every live path, the path order rotating."""
        for number in range(self.sizes.rounds):
            progress(f"round {number + 1} of {self.sizes.rounds}")
            shift = number % len(self.routes)
            order = self.routes[shift:] + self.routes[:shift]
            for workload in WORKLOADS:
                for route, plan in order:
                    self.measure(workload, route, plan, profile=number == 0)

    def measure(
        self, workload: Workload, route: Route, plan: ProxyPlan | None, profile: bool
    ) -> None:
        """One workload on one path (skipped if the path broke or needs a proxy)."""
        if route.result.error or (workload.proxied_only and route.api is None):
            return
        if plan is not None:
            plan.server.pin(self.placement.proxy_cpus(workload))
        profiler = self.profiler if profile else Profiler(None)
        try:
            with profiler.sample(plan, workload.name):
                workload.run(route, self.sizes)
        except (OSError, RuntimeError) as error:
            fail(route.result, error, plan.server if plan is not None else None)


def measure_all(
    args: argparse.Namespace, placement: Placement, plans: list[ProxyPlan]
) -> list[PathResult]:
    """Start the servers, run every round, stop everything; the results, finalized."""
    sizes = QUICK if args.quick else FULL
    profiler = Profiler(args.profile)
    with echo_sink_source() as (echo, sink, source), contextlib.ExitStack() as stack:
        direct = Route(PathResult("direct", "direct"), Servers(echo, sink, source))
        warm_up(direct)
        routes: list[tuple[Route, ProxyPlan | None]] = [(direct, None)]
        for plan in plans:
            progress(f"starting {plan.result.label}")
            route = start_route(stack, plan, direct.servers)
            if route is not None:
                routes.append((route, plan))
        Run(sizes, placement, profiler, routes).rounds()
    results = [direct.result, *(plan.result for plan in plans)]
    for result in results:
        if not result.error:
            finalize(result, direct.result)
    return results


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write figures and samples to FILE"
    )
    parser.add_argument(
        "--placement",
        choices=sorted(PLACEMENTS),
        default="mixed",
        help="CPU placement (default: mixed)",
    )
    parser.add_argument(
        "--paths",
        help="only these proxy paths (comma-separated): embedded-uvloop, embedded-asyncio, toxiproxy",
    )
    parser.add_argument(
        "--embedded-pythonpath",
        metavar="DIR",
        help="run the embedded server from a copy of pytest_chaos in DIR (to A/B a change)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the embedded servers in round 1, per workload, into DIR",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if args.profile and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy on PATH (python3 -m pip install py-spy)")
    return args


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write the JSON report."""
    path.write_text(json.dumps(document, indent=2))


def main(argv: list[str] | None = None) -> int:
    """Run every path, print the table and the targets, optionally write JSON."""
    args = parse_args(argv)
    placement, placement_text = choose_placement(args.placement)
    plans = plan_proxies(args, placement)
    header = describe_setup(args, placement_text, plans)
    print(header, flush=True)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    meter = CpuMeter.start()
    results = measure_all(args, placement, plans)
    noise = meter.other_pct()
    real = next((r for r in results if r.name == "toxiproxy" and not r.error), None)
    targets, records = format_targets(results, real)
    failures = "".join(f"\n{r.label} FAILED: {r.error}" for r in results if r.error)
    print(f"\n{format_table(results, real)}{failures}\n\n{targets}\n")
    elapsed = time.monotonic() - meter.wall
    print(
        f"total {elapsed:.0f} s; other processes used {noise:.0f}% of the machine's CPU meanwhile"
    )
    if args.json:
        document: dict[str, Any] = {
            "setup": header,
            "placement": placement.name,
            "sizes": asdict(QUICK if args.quick else FULL),
            "other_processes_cpu_pct": noise,
            "results": [asdict(r) for r in results],
            "targets": records,
        }
        write_json(args.json, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
