"""The proxies of one run: their traffic, read from the server's counters (bytes, clients,
and clients that spoke HTTP, which the embedded server counts), and the link faults of the
catalogue applied through the test's own ``toxiproxy`` client (so that its teardown undoes
them whatever happens)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

import httpx

from pytest_chaos.explore.catalogue import RETRY_AFTER_S, TRUNCATED_BODY_BYTES, TRUNCATED_BYTES
from pytest_chaos.explore.cells import Dependency, FaultRef
from pytest_chaos.explore.recording import UNKNOWN, Usage
from pytest_chaos.proxy.client import Proxy
from pytest_chaos.proxy.errors import InvalidToxic
from pytest_chaos.proxy.toxics import STREAMS

_SAMPLE = re.compile(r"^(\w+)\{(.*)\}\s+(\d+)", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_BYTES = "toxiproxy_proxy_received_bytes_total"
_CONNECTIONS = "pytest_chaos_proxy_connections_total"
_HTTP = "pytest_chaos_proxy_http_connections_total"


@final
@dataclass(frozen=True)
class Counts:
    """A proxy's counters: bytes received (both directions), clients accepted and those
    that spoke HTTP (None where the server does not count them: a real Toxiproxy)."""

    bytes: int = 0
    connections: int | None = None
    http: int | None = None

    def since(self, before: Counts) -> Counts:
        def delta(now: int | None, then: int | None) -> int | None:
            return None if now is None else now - (then or 0)

        return Counts(
            self.bytes - before.bytes,
            delta(self.connections, before.connections),
            delta(self.http, before.http),
        )


@final
class Links:
    """The proxies a test made (by the name it gave them), their traffic during the
    call, and the faults put on them."""

    def __init__(self, latency_ms: int) -> None:
        self.latency_ms = latency_ms
        self._proxies: dict[str, Proxy] = {}
        self._before: dict[str, Counts] = {}
        self._after: dict[str, Counts] = {}
        self._started = False
        self._endings: list[Callable[[], None]] = []

    def add(self, name: str, proxy: Proxy) -> None:
        """A proxy the test made, named as the test named it (without a worker prefix)."""
        self._proxies[name] = proxy
        if self._started:
            self._before[name] = Counts()  # made during the body: all its traffic is the body's

    def get(self, name: str) -> Proxy | None:
        return self._proxies.get(name)

    def addresses(self) -> dict[str, str]:
        """Each proxy's listen address (``host:port``), by name."""
        return {name: proxy.listen for name, proxy in self._proxies.items()}

    def upstreams(self) -> dict[str, str]:
        return {name: proxy.upstream for name, proxy in self._proxies.items()}

    # -- traffic ---------------------------------------------------------------------------

    def start(self) -> None:
        self._before = self._counts()
        self._started = True

    def stop(self) -> None:
        self._after = self._counts()
        self._started = False

    def usages(self) -> list[Usage]:
        """Each proxy's use during the body: its clients (or, where the server counts none,
        whether bytes went through), and whether they spoke HTTP."""
        usages = []
        for name in self._proxies:
            after = self._after.get(name)
            if after is None:
                usages.append(Usage(Dependency("link", name), uses=UNKNOWN))
                continue
            counts = after.since(self._before.get(name, Counts()))
            uses = counts.connections if counts.connections is not None else int(counts.bytes > 0)
            protocol = "http" if counts.http else None
            usages.append(
                Usage(Dependency("link", name), uses=uses, bytes=counts.bytes, protocol=protocol)
            )
        return usages

    def _counts(self) -> dict[str, Counts]:
        """Each proxy's counters, from its server's ``/metrics``; a proxy the server does
        not count is left out."""
        by_server: dict[str, list[tuple[str, Proxy]]] = {}
        for name, proxy in self._proxies.items():
            by_server.setdefault(proxy.api.url, []).append((name, proxy))
        counts: dict[str, Counts] = {}
        for url, proxies in by_server.items():
            totals = _metrics(url)
            for name, proxy in proxies:
                if proxy.name in totals:
                    counts[name] = totals[proxy.name]
        return counts

    # -- faults ----------------------------------------------------------------------------

    def apply(self, fault: FaultRef) -> None:
        """Put a link fault of the catalogue on its proxy, until :meth:`end_faults`."""
        proxy = self._proxies[fault.dependency.name]
        ms = self.latency_ms
        make: dict[str, Callable[[], list[Any]]] = {
            "down": lambda: [proxy.down()],
            "blackhole": lambda: _blackhole(proxy),
            "latency": lambda: [proxy.latency(ms)],
            "reset": lambda: [proxy.reset_peer(0)],
            "slow-close": lambda: [proxy.slow_close(ms)],
            "truncated": lambda: [proxy.limit_data(TRUNCATED_BYTES)],
            "http-500": lambda: [proxy.http_status(500)],
            "http-503": lambda: [proxy.http_status(503)],
            "http-429": lambda: [proxy.http_status(429, retry_after=RETRY_AFTER_S)],
            "slow-head": lambda: [proxy.http_latency(ms)],
            "truncated-body": lambda: [proxy.http_truncate(TRUNCATED_BODY_BYTES)],
        }
        for ending in make[fault.fault]():
            self._endings.append(ending.end)

    def end_faults(self) -> None:
        while self._endings:
            self._endings.pop()()


def _blackhole(proxy: Proxy) -> list[Any]:
    """Nothing through either way, not even a close; on a real Toxiproxy, which has no
    black hole, ``timeout`` toxics (which let the server's close through)."""
    try:
        return [proxy.blackhole(stream=stream) for stream in STREAMS]
    except InvalidToxic:
        return [proxy.timeout(0, stream=stream) for stream in STREAMS]


def _metrics(url: str) -> dict[str, Counts]:
    """Each proxy's counters at ``url`` ({} when the server keeps none, as a real
    Toxiproxy without ``-proxy-metrics``)."""
    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    found: dict[str, dict[str, int]] = {}
    for metric, labels, value in _SAMPLE.findall(text):
        proxy = dict(_LABEL.findall(labels)).get("proxy")
        if proxy is not None and metric in (_BYTES, _CONNECTIONS, _HTTP):
            counters = found.setdefault(proxy, {})
            counters[metric] = counters.get(metric, 0) + int(value)
    return {
        proxy: Counts(c.get(_BYTES, 0), c.get(_CONNECTIONS), c.get(_HTTP))
        for proxy, c in found.items()
    }
