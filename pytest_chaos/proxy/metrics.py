"""What ``/metrics`` shows: the proxies' byte counters, named as Toxiproxy's, with the
clients each took; and process metrics, named, described and typed as the Prometheus Python
client's ``ProcessCollector`` exposes them, so dashboards built for any Python service read
the proxy server too.

They come from ``/proc`` (Linux), as the client's do; where there is no ``/proc``, there
are none, as with the client. Reading them takes a few system calls, which is why this is
a small module instead of a dependency on ``prometheus_client``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from pytest_chaos.proxy.toxics import STREAMS

_PROC = Path("/proc")


class Counted(Protocol):
    """What the metrics read of a proxy (:class:`pytest_chaos.proxy.engine.Proxy`)."""

    name: str
    listen: str
    upstream: str
    accepted: int
    http_clients: int

    def byte_count(self, direction: str, metric: str) -> int: ...


def proxy_metrics(proxies: Iterable[Counted]) -> str:
    """Byte counters in Prometheus text format, named as Toxiproxy's ``/metrics``; then
    pytest-chaos's own: how many clients each proxy took, and how many spoke HTTP."""
    proxies = list(proxies)
    lines: list[str] = []
    for metric, kind in (("received", "received"), ("sent", "sent")):
        full = f"toxiproxy_proxy_{metric}_bytes_total"
        lines.append(f"# HELP {full} Total bytes {kind} through the proxy")
        lines.append(f"# TYPE {full} counter")
        for proxy in proxies:
            for direction in STREAMS:
                labels = (
                    f'direction="{direction}",listener="{_label(proxy.listen)}",'
                    f'proxy="{_label(proxy.name)}",upstream="{_label(proxy.upstream)}"'
                )
                value = proxy.byte_count(direction, metric)
                lines.append(f"{full}{{{labels}}} {value}")
    for metric, what in (
        ("connections", "Clients the proxy accepted"),
        ("http_connections", "Clients whose first bytes were an HTTP request"),
    ):
        full = f"pytest_chaos_proxy_{metric}_total"
        lines.append(f"# HELP {full} {what}")
        lines.append(f"# TYPE {full} counter")
        for proxy in proxies:
            value = proxy.accepted if metric == "connections" else proxy.http_clients
            lines.append(f'{full}{{proxy="{_label(proxy.name)}"}} {value}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def process_metrics(proc: Path = _PROC) -> str:
    """This process's metrics in the Prometheus text format (empty without ``/proc``)."""
    families: list[tuple[str, str, str, float]] = []
    try:
        btime = _boot_time(proc)
        fields = (proc / "self/stat").read_bytes().rsplit(b")", 1)[-1].split()
    except (OSError, ValueError):
        return ""
    ticks = os.sysconf("SC_CLK_TCK")
    families += [
        ("virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", float(fields[20])),
        (
            "resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            float(fields[21]) * os.sysconf("SC_PAGE_SIZE"),
        ),
        (
            "start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            float(fields[19]) / ticks + btime,
        ),
        (
            "cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (float(fields[11]) + float(fields[12])) / ticks,
        ),
    ]
    try:
        open_fds = len(os.listdir(proc / "self/fd"))
        max_fds = _max_open_files(proc)
    except (OSError, ValueError):
        pass
    else:
        families += [
            ("open_fds", "gauge", "Number of open file descriptors.", float(open_fds)),
            ("max_fds", "gauge", "Maximum number of open file descriptors.", max_fds),
        ]
    lines: list[str] = []
    for suffix, kind, text, value in families:
        name = f"process_{suffix}"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value!r}"]
    return "\n".join(lines) + "\n"


def _boot_time(proc: Path) -> float:
    for line in (proc / "stat").read_bytes().splitlines():
        if line.startswith(b"btime "):
            return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")


def _max_open_files(proc: Path) -> float:
    for line in (proc / "self/limits").read_bytes().splitlines():
        if line.startswith(b"Max open file"):
            return float(line.split()[3])
    raise ValueError("no open-file limit in /proc/self/limits")
