"""Probes: checks of the system, each a description checked later. The same probe serves as
a readiness check of a service and as a steady-state probe of an experiment.

    from pytest_chaos import probes

    service.process("redis", ["redis-server", "--port", "{port}"], ready=probes.tcp())
    chaos.experiment(..., steady_state=[probes.http(shop.url + "/health"), probes.slo(...)])
"""

from __future__ import annotations

from pytest_chaos.steady.probes import Probe, ProbeRun, call, http, log, tcp
from pytest_chaos.steady.slo import slo

__all__ = ["Probe", "ProbeRun", "call", "http", "log", "slo", "tcp"]
