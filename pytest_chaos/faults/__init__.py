"""Faults: the vocabulary for describing them (network, process, container, in-process,
HTTP, your own action), and the records of those applied, with the log that undoes them.

    from pytest_chaos import faults

    with faults.latency(link, ms=300):        # a plain test: applied here, undone on exit
        ...
    chaos.experiment(..., method=[faults.down("redis", start_after_s=1, for_s=2)])
"""

from __future__ import annotations

from pytest_chaos.core.faultlog import (
    ActiveFault,
    FaultListener,
    FaultLog,
    FaultRecord,
    ignore_fault,
)
from pytest_chaos.faults.described import (
    Ending,
    Fault,
    Resolver,
    action,
    bandwidth,
    down,
    http,
    kill,
    latency,
    patch,
    pause,
    reset_peer,
    stop,
    timeout,
    toxic,
)

__all__ = [
    "ActiveFault",
    "Ending",
    "Fault",
    "FaultListener",
    "FaultLog",
    "FaultRecord",
    "Resolver",
    "action",
    "bandwidth",
    "down",
    "http",
    "ignore_fault",
    "kill",
    "latency",
    "patch",
    "pause",
    "reset_peer",
    "stop",
    "timeout",
    "toxic",
]
