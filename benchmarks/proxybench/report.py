"""The benchmark's report: the side-by-side table, the targets, and a measure of how busy
the machine was with other work while the benchmark ran."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxybench.workloads import PathResult

#: (metric key, row label, format) in table order.
ROWS: list[tuple[str, str, str]] = [
    ("throughput_mbps", "bulk throughput, MB/s", "{:.0f}"),
    ("bulk_cpu_s_per_gb", "proxy CPU per GB of bulk, s", "{:.2f}"),
    ("rtt_p50_us", "64 B round trip p50, µs", "{:.1f}"),
    ("rtt_p99_us", "64 B round trip p99, µs", "{:.1f}"),
    ("added_rtt_p50_us", "added RTT p50, µs", "{:.1f}"),
    ("added_rtt_p99_us", "added RTT p99, µs", "{:.1f}"),
    ("conn_seq_per_s", "new conns/s, 1 client", "{:.0f}"),
    ("conn_conc_per_s", "new conns/s, 4 clients", "{:.0f}"),
    ("latency_err_median_ms", "latency 50ms: median err, ms", "{:+.2f}"),
    ("latency_err_worst_ms", "latency 50ms: worst err, ms", "{:+.2f}"),
    ("bandwidth_kbps", "bandwidth 2000: KB/s", "{:.1f}"),
    ("bandwidth_err_pct", "bandwidth 2000: error, %", "{:+.2f}"),
    ("latency_bulk_mbps", "throughput, latency 10ms, MB/s", "{:.0f}"),
]


def is_embedded(result: PathResult) -> bool:
    """True for the embedded server's paths."""
    return result.name.startswith("embedded")


def ratio(embedded: PathResult, real: PathResult | None, key: str) -> float | None:
    """embedded / real for one metric, when both exist and the quotient means something."""
    if real is None or key not in embedded.metrics or key not in real.metrics:
        return None
    a, b = embedded.metrics[key], real.metrics[key]
    if b == 0 or (a < 0) != (b < 0):
        return None
    return a / b


def render_row(cells: list[str], widths: list[int]) -> str:
    """One table line: the label left-aligned, numbers right-aligned."""
    rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
    return "  ".join([cells[0].ljust(widths[0]), *rest])


def format_table(results: list[PathResult], real: PathResult | None) -> str:
    """The side-by-side table, with an embedded/real ratio column per embedded variant."""
    embedded = [r for r in results if is_embedded(r)]
    headers = ["metric", *(r.label for r in results), *(f"{r.label}/real" for r in embedded)]
    lines = []
    for key, label, fmt in ROWS:
        cells = [label]
        cells += [fmt.format(r.metrics[key]) if key in r.metrics else "-" for r in results]
        for emb in embedded:
            value = ratio(emb, real, key)
            cells.append("-" if value is None else f"{value:.2f}x")
        lines.append(cells)
    widths = [max(len(row[i]) for row in [headers, *lines]) for i in range(len(headers))]
    rule = "-" * len(render_row(headers, widths))
    return "\n".join([render_row(headers, widths), rule, *(render_row(c, widths) for c in lines)])


Check = Callable[[PathResult, "PathResult | None"], tuple[str, "bool | None"]]


@dataclass(frozen=True)
class Target:
    """A goal for the embedded engine, checked against each embedded variant."""

    text: str
    check: Check


def ratio_target(key: str, bound: float, at_least: bool) -> Check:
    """A check that the embedded/real ratio of ``key`` is >= (or <=) ``bound``."""

    def check(emb: PathResult, real: PathResult | None) -> tuple[str, bool | None]:
        value = ratio(emb, real, key)
        if value is None:
            return ("n/a (no real server)" if real is None else "n/a"), None
        return f"{value:.2f}x", value >= bound if at_least else value <= bound

    return check


def absolute_target(key: str, bound: float, unit: str) -> Check:
    """A check that ``|metric|`` is at most ``bound``."""

    def check(emb: PathResult, real: PathResult | None) -> tuple[str, bool | None]:
        if key not in emb.metrics:
            return "not measured", None
        value = emb.metrics[key]
        return f"{value:+.2f} {unit}", abs(value) <= bound

    return check


TARGETS = [
    Target("bulk throughput >= 1.5x real", ratio_target("throughput_mbps", 1.5, True)),
    Target("added RTT p50 <= 1.0x real", ratio_target("added_rtt_p50_us", 1.0, False)),
    Target("new conns/s, 1 client >= 1.2x real", ratio_target("conn_seq_per_s", 1.2, True)),
    Target("new conns/s, 4 clients >= 1.2x real", ratio_target("conn_conc_per_s", 1.2, True)),
    Target("throughput, latency 10ms >= 1.0x real", ratio_target("latency_bulk_mbps", 1.0, True)),
    Target("latency 50ms median error <= 0.5 ms", absolute_target("latency_err_median_ms", 0.5, "ms")),
    Target("bandwidth 2000 KB/s within 1%", absolute_target("bandwidth_err_pct", 1.0, "%")),
]  # fmt: skip


def format_targets(
    results: list[PathResult], real: PathResult | None
) -> tuple[str, list[dict[str, Any]]]:
    """The targets section, and the same as JSON-ready records."""
    verdicts = {True: "PASS", False: "FAIL", None: "----"}
    lines, records = ["targets (embedded vs real):"], []
    for target in TARGETS:
        parts = []
        for emb in filter(is_embedded, results):
            text, ok = target.check(emb, real)
            parts.append(f"{emb.label}: {text} {verdicts[ok]}")
            records.append({"target": target.text, "path": emb.name, "value": text, "ok": ok})
        lines.append(f"  {target.text:<40} " + "; ".join(parts))
    return "\n".join(lines), records


@dataclass(frozen=True)
class CpuMeter:
    """How much CPU processes other than the benchmark used since it was created: noise.

    All CPUs' user+nice+system time from /proc/stat, less this process's and its waited-for
    children's (the servers, which it waits for when it stops them)."""

    wall: float
    busy: float
    own: float

    @classmethod
    def start(cls) -> CpuMeter:
        """A meter reading from now on."""
        return cls(time.monotonic(), _busy_seconds(), _own_seconds())

    def other_pct(self) -> float:
        """Share (%) of the whole machine used by other processes since the start."""
        wall = time.monotonic() - self.wall
        other = (_busy_seconds() - self.busy) - (_own_seconds() - self.own)
        return max(0.0, other) / (wall * (os.cpu_count() or 1)) * 100.0


def _busy_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return (int(fields[1]) + int(fields[2]) + int(fields[3])) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
