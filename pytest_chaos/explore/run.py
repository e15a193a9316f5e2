"""One run of a test under a cell's faults: what it makes (proxies, services, httpx
clients, call sites) is watched from its set-up on; when its body starts, the cell's
faults go on and the recording begins; when the body ends, both stop.

A fault on a dependency that the body itself creates goes on when it exists: a proxy when
it is made, a service once it is ready (so its start-up is not what the fault breaks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, final

from pytest_chaos.explore.calls import CallSites
from pytest_chaos.explore.cells import Cell, Dependency, FaultRef
from pytest_chaos.explore.httpx_capture import HttpCapture
from pytest_chaos.explore.links import Links
from pytest_chaos.explore.recording import UNKNOWN, Recording, Usage

if TYPE_CHECKING:
    from pytest_chaos.proxy.client import Proxy
    from pytest_chaos.services.lifecycle import Service

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@final
class CellRun:
    """The explorer's side of one test run: ``cell`` says which faults to apply (none for
    the baseline), ``latency_ms`` how slow the slow faults are; ``ignored`` says whether a
    ``host:port`` is the chaos machinery's own (the Toxiproxy API), ``is_test_file``
    whether a source file is the test's own code (its requests are not a dependency's)."""

    def __init__(
        self,
        cell: Cell,
        *,
        seed: int,
        latency_ms: int,
        ignored: Callable[[str], bool],
        is_test_file: Callable[[str], bool],
    ) -> None:
        self.cell = cell
        self.links = Links(latency_ms)
        self.calls = CallSites(seed)
        self.services: dict[str, Service] = {}
        self.http = HttpCapture(
            seed=seed, host_name=self._host_name, ignored=ignored, is_test_file=is_test_file
        )
        self.consulted: set[FaultRef] = set()
        self._pending = [fault for fault in cell.faults if fault.dependency.kind != "http"]
        self._in_body = False
        self._endings: list[Callable[[], object]] = []

    # -- the run's life --------------------------------------------------------------------

    def begin(self) -> None:
        """Before the test's set-up: watch the httpx clients it creates."""
        self.http.install()

    def start_body(self) -> None:
        """The body starts: record, and apply the faults on what exists."""
        self.links.start()
        self.calls.start()
        self.http.start()
        self._in_body = True
        for fault in self.cell.faults:
            if fault.dependency.kind == "http":
                self.http.apply(fault)
        self._apply_pending()

    def end_body(self) -> None:
        """The body ended, however: stop recording, end the faults (a killed process
        stays down; teardown stops it)."""
        self._in_body = False
        self.http.stop()
        try:
            self.http.end_faults()
            self.links.end_faults()
            self.calls.end_faults()
            while self._endings:
                self._endings.pop()()
        finally:
            self.links.stop()

    def finish(self) -> None:
        """After teardown: stop watching clients, restore call sites."""
        self.http.uninstall()
        self.calls.undo()

    # -- what the test makes ---------------------------------------------------------------

    def proxy_created(self, name: str, proxy: Proxy) -> None:
        self.links.add(name, proxy)
        self._apply_pending()

    def service_ready(self, service: Service) -> None:
        self.services[service.name] = service
        self._apply_pending()

    def register_call_site(
        self, target: str, errors: Iterable[BaseException | type[BaseException]]
    ) -> None:
        self.calls.register(target, errors)
        self._apply_pending()

    def _apply_pending(self) -> None:
        if not self._in_body:
            return
        for fault in list(self._pending):
            if self._apply(fault):
                self._pending.remove(fault)

    def _apply(self, fault: FaultRef) -> bool:
        """Apply ``fault`` if its dependency exists; whether it did."""
        kind, name = fault.dependency.kind, fault.dependency.name
        if kind == "link" and self.links.get(name) is not None:
            self.links.apply(fault)
        elif kind == "call" and self.calls.get(name) is not None:
            self.calls.apply(fault)
        elif kind == "process" and name in self.services:
            service = self.services[name]
            if fault.fault == "pause":
                self._endings.append(service.pause().end)
            else:
                service.kill()
        else:
            return False
        return True

    @property
    def unapplied(self) -> list[FaultRef]:
        """Faults whose dependency never appeared in this run."""
        return list(self._pending)

    # -- the test's questions --------------------------------------------------------------

    def faulted(self, dependency: str | None, fault: str | None) -> tuple[FaultRef, ...]:
        found = tuple(
            ref
            for ref in self.cell.faults
            if (dependency is None or ref.dependency.answers_to(dependency))
            and fault in (None, ref.fault)
        )
        self.consulted.update(found)
        return found

    # -- the record ------------------------------------------------------------------------

    def recording(self) -> Recording:
        links = [
            replace(usage, target=self._upstream_service(usage)) for usage in self.links.usages()
        ]
        usages = [*links, *self.http.usages(), *self.calls.usages()]
        return Recording.of([*usages, *self._process_usages(usages)], self.http.own)

    def _upstream_service(self, usage: Usage) -> str | None:
        """The service of the test a link leads to (by its upstream's port)."""
        port = _port(self.links.upstreams().get(usage.dependency.name, ""))
        for name, service in self.services.items():
            if port in {str(p) for p in service.ports.values()}:
                return name
        return None

    def _process_usages(self, usages: list[Usage]) -> list[Usage]:
        """A service is used as much as what reaches it: the links whose upstream is one
        of its ports, and the HTTP endpoints named after it."""
        found = []
        for name in self.services:
            reaching = [usage for usage in usages if usage.service == name]
            if not reaching:
                found.append(Usage(Dependency("process", name), uses=0))
                continue
            uses = [usage.uses for usage in reaching]
            total = UNKNOWN if UNKNOWN in uses else sum(uses)
            found.append(Usage(Dependency("process", name), uses=total))
        return found

    def _host_name(self, host_port: str) -> str | None:
        """The name of what listens at ``host_port`` on this machine: a proxy or a
        service of the test; None for anything else."""
        host, _, port = host_port.rpartition(":")
        if host not in _LOOPBACK:
            return None
        for name, listen in self.links.addresses().items():
            if _port(listen) == port:
                return name
        for name, service in self.services.items():
            if port in {str(p) for p in service.ports.values()}:
                return name
        return None


def _port(address: str) -> str:
    return address.rpartition(":")[2]
