"""Probes: checks of a service. For now, readiness probes for ``service.process(...,
ready=...)``; each is a description, checked against the service once it has started.

    from pytest_chaos import probes

    service.process("redis", ["redis-server", "--port", "{port}"], ready=probes.tcp())
"""

from __future__ import annotations

from .services.ready import Probe, call, http, log, tcp

__all__ = ["Probe", "call", "http", "log", "tcp"]
