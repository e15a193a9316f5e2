"""Process metrics for ``/metrics``, named, described and typed as the Prometheus Python
client's ``ProcessCollector`` exposes them, so dashboards built for any Python service read
the proxy server too.

They come from ``/proc`` (Linux), as the client's do; where there is no ``/proc``, there
are none, as with the client. Reading them takes a few system calls, which is why this is
a small module instead of a dependency on ``prometheus_client``.
"""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


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
