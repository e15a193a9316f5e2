"""The benchmark's workloads: each one adds samples to a path's result for one round, and
:func:`finalize` turns the samples of all rounds into the figures the report prints.

Units: MB = 10^6 bytes, KB = 1000 bytes, times in µs unless a key says ``_ms``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from proxybench import client
from proxybench.proxies import Address, ApiClient

MIB = 1 << 20
LATENCY_MS = 50
BANDWIDTH_KBPS = 2000
BULK_LATENCY_MS = 10


@dataclass(frozen=True)
class Sizes:
    """How much each workload does in one round, and how many rounds there are."""

    rounds: int
    bulk_bytes: int
    rtt_count: int
    rtt_warmup: int
    conn_count: int
    conn_clients: int
    latency_trips: int
    bandwidth_s: float
    latency_bulk_bytes: int


FULL = Sizes(
    rounds=5,
    bulk_bytes=512 * MIB,
    rtt_count=5000,
    rtt_warmup=500,
    conn_count=2000,
    conn_clients=4,
    latency_trips=20,
    bandwidth_s=2.0,
    latency_bulk_bytes=256 * MIB,
)
QUICK = Sizes(
    rounds=1,
    bulk_bytes=64 * MIB,
    rtt_count=1000,
    rtt_warmup=100,
    conn_count=300,
    conn_clients=4,
    latency_trips=40,
    bandwidth_s=1.0,
    latency_bulk_bytes=32 * MIB,
)


@dataclass(frozen=True)
class Servers:
    """Where the echo, sink and source servers listen (directly, or through proxies)."""

    echo: Address
    sink: Address
    source: Address


@dataclass
class PathResult:
    """What one path measured: raw samples by key, then figures by metric key."""

    name: str
    label: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def add(self, key: str, *values: float) -> None:
        """Append samples under ``key``."""
        self.samples.setdefault(key, []).extend(values)


@dataclass
class Route:
    """One way to the servers: their own addresses (direct) or a proxy server's."""

    result: PathResult
    servers: Servers
    api: ApiClient | None = None  # None on the direct path
    cpu_seconds: Callable[[], float] | None = None  # the proxy server's CPU time so far


@contextlib.contextmanager
def toxic(api: ApiClient, proxy: str, kind: str, stream: str, **attributes: int) -> Iterator[None]:
    """A toxic on ``proxy`` for the duration of the block."""
    name = f"bench_{kind}_{stream}"
    api.add_toxic(proxy, name, kind, stream, **attributes)
    try:
        yield
    finally:
        api.remove_toxic(proxy, name)


def bulk(route: Route, sizes: Sizes) -> None:
    """One bulk transfer into the sink (MB/s), and the proxy's CPU time for it (s/GB)."""
    cpu_before = route.cpu_seconds() if route.cpu_seconds else 0.0
    seconds = client.bulk_seconds(route.servers.sink, sizes.bulk_bytes)
    route.result.add("throughput_mbps", sizes.bulk_bytes / seconds / 1e6)
    if route.cpu_seconds:
        cpu = route.cpu_seconds() - cpu_before
        route.result.add("bulk_cpu_s_per_gb", cpu / (sizes.bulk_bytes / 1e9))


def round_trips(route: Route, sizes: Sizes) -> None:
    """p50 and p99 of 64-byte round trips over one persistent connection (µs)."""
    times = client.round_trips_us(route.servers.echo, sizes.rtt_count, sizes.rtt_warmup)
    route.result.add("rtt_p50_us", client.percentile(times, 0.50))
    route.result.add("rtt_p99_us", client.percentile(times, 0.99))


def connections(route: Route, sizes: Sizes) -> None:
    """New connections per second: one client, then several client threads at once."""
    echo, count = route.servers.echo, sizes.conn_count
    route.result.add("conn_seq_per_s", client.connections_per_s(echo, count, 1))
    route.result.add("conn_conc_per_s", client.connections_per_s(echo, count, sizes.conn_clients))


def latency_toxic(route: Route, sizes: Sizes) -> None:
    """Round trips through ``latency`` 50 ms downstream (raw µs; errors in :func:`finalize`)."""
    assert route.api is not None
    with toxic(route.api, "echo", "latency", "downstream", latency=LATENCY_MS):
        times = client.round_trips_us(route.servers.echo, sizes.latency_trips, warmup=2)
    route.result.add("latency_rtt_us", *times)


def bandwidth_toxic(route: Route, sizes: Sizes) -> None:
    """The rate a download achieves through ``bandwidth`` 2000 KB/s downstream (KB/s)."""
    assert route.api is not None
    total = int(BANDWIDTH_KBPS * 1000 * sizes.bandwidth_s)
    with toxic(route.api, "source", "bandwidth", "downstream", rate=BANDWIDTH_KBPS):
        seconds = client.download_seconds(route.servers.source, total)
    route.result.add("bandwidth_kbps", total / 1000.0 / seconds)


def latency_bulk(route: Route, sizes: Sizes) -> None:
    """One bulk transfer through ``latency`` 10 ms on the upstream (data) direction (MB/s)."""
    assert route.api is not None
    total = sizes.latency_bulk_bytes
    with toxic(route.api, "sink", "latency", "upstream", latency=BULK_LATENCY_MS):
        seconds = client.bulk_seconds(route.servers.sink, total)
    route.result.add("latency_bulk_mbps", total / seconds / 1e6)


def warm_up(route: Route) -> None:
    """A little of every workload, so that imports, caches and buffers settle."""
    client.bulk_seconds(route.servers.sink, 16 * MIB)
    client.round_trips_us(route.servers.echo, 200, 0)
    client.connections_per_s(route.servers.echo, 50, 1)
    client.download_seconds(route.servers.source, MIB)


@dataclass(frozen=True)
class Workload:
    """A workload: its name, whether it streams data (for CPU placement) and whether it
    needs a proxy (toxics)."""

    name: str
    streaming: bool
    proxied_only: bool
    run: Callable[[Route, Sizes], None]


WORKLOADS = [
    Workload("throughput", True, False, bulk),
    Workload("bandwidth", True, True, bandwidth_toxic),
    Workload("latency_bulk", True, True, latency_bulk),
    Workload("rtt", False, False, round_trips),
    Workload("connections", False, False, connections),
    Workload("latency", False, True, latency_toxic),
]


def finalize(result: PathResult, direct: PathResult) -> None:
    """Figures from samples: medians over rounds; latency errors against direct p50 + 50 ms;
    round-trip time added to the direct path."""
    samples, metrics = result.samples, result.metrics
    for key, values in samples.items():
        if key != "latency_rtt_us":
            metrics[key] = client.median(values)
    direct_p50 = client.median(direct.samples["rtt_p50_us"])
    if result is not direct:
        for key in ("rtt_p50_us", "rtt_p99_us"):
            if key in metrics:
                added = metrics[key] - client.median(direct.samples[key])
                metrics[key.replace("rtt_", "added_rtt_")] = added
    if "latency_rtt_us" in samples:
        errors = [(t - direct_p50) / 1000.0 - LATENCY_MS for t in samples["latency_rtt_us"]]
        samples["latency_err_ms"] = errors
        metrics["latency_err_median_ms"] = client.median(errors)
        metrics["latency_err_worst_ms"] = max(errors, key=abs)
    if "bandwidth_kbps" in metrics:
        metrics["bandwidth_err_pct"] = (metrics["bandwidth_kbps"] / BANDWIDTH_KBPS - 1.0) * 100
