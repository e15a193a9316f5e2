"""The proxies of one run: their traffic, read from the server's counters, and the link
faults of the catalogue applied through the test's own ``toxiproxy`` client (so that its
teardown undoes them whatever happens)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from ..proxy.client import Proxy
from .catalogue import TRUNCATED_BYTES
from .cells import Dependency, FaultRef
from .recording import UNKNOWN, Usage

_SAMPLE = re.compile(r"^toxiproxy_proxy_received_bytes_total\{(.*)\}\s+(\d+)", re.M)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Links:
    """The proxies a test made (by the name it gave them), their traffic during the
    call, and the faults put on them."""

    def __init__(self, latency_ms: int) -> None:
        self.latency_ms = latency_ms
        self._proxies: dict[str, Proxy] = {}
        self._before: dict[str, int] = {}
        self._after: dict[str, int] = {}
        self._started = False
        self._endings: list[Callable[[], None]] = []

    def add(self, name: str, proxy: Proxy) -> None:
        """A proxy the test made, named as the test named it (without a worker prefix)."""
        self._proxies[name] = proxy
        if self._started:
            self._before[name] = 0  # made during the call: all its traffic is the call's

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
        usages = []
        for name in self._proxies:
            after = self._after.get(name)
            if after is None:
                usages.append(Usage(Dependency("link", name), uses=UNKNOWN))
                continue
            delta = after - self._before.get(name, 0)
            usages.append(Usage(Dependency("link", name), uses=int(delta > 0), bytes=delta))
        return usages

    def _counts(self) -> dict[str, int]:
        """Bytes received by each proxy (both directions), from its server's
        ``/metrics``; a proxy the server does not count is left out."""
        by_server: dict[str, list[tuple[str, Proxy]]] = {}
        for name, proxy in self._proxies.items():
            by_server.setdefault(proxy.api.url, []).append((name, proxy))
        counts: dict[str, int] = {}
        for url, proxies in by_server.items():
            totals = _received(url)
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
            "blackhole": lambda: [
                proxy.timeout(0, stream="upstream"),
                proxy.timeout(0, stream="downstream"),
            ],
            "latency": lambda: [proxy.latency(ms)],
            "reset": lambda: [proxy.reset_peer(0)],
            "slow-close": lambda: [proxy.slow_close(ms)],
            "truncated": lambda: [proxy.limit_data(TRUNCATED_BYTES)],
        }
        for ending in make[fault.fault]():
            self._endings.append(ending.end)

    def end_faults(self) -> None:
        while self._endings:
            self._endings.pop()()


def _received(url: str) -> dict[str, int]:
    """Bytes received per proxy name, summed over directions, from ``url``'s metrics
    ({} when the server keeps none, as a real Toxiproxy without ``-proxy-metrics``)."""
    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    totals: dict[str, int] = {}
    for labels, value in _SAMPLE.findall(text):
        proxy = dict(_LABEL.findall(labels)).get("proxy")
        if proxy is not None:
            totals[proxy] = totals.get(proxy, 0) + int(value)
    return totals
