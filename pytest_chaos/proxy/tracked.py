"""The client a test gets from the ``toxiproxy`` fixture: it remembers every proxy it created
and every fault it applied, and undoes all of them at teardown whatever the outcome.

Under ``--chaos-dry-run`` faults are recorded and reported but never sent to the server;
proxies are still created, since they are plumbing, not faults. On a server shared by
several xdist workers, proxy names get the worker's prefix so tests cannot collide.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..faults import FaultRecord
from ..seeding import TestSeeds
from .client import Proxy, Toxic, Toxiproxy
from .errors import NotFound

FaultListener = Callable[[FaultRecord], None]


def _ignore(fault: FaultRecord) -> None:
    """The listener used when nobody listens."""


class ChaosToxiproxy(Toxiproxy):
    """A Toxiproxy client whose proxies and faults are undone by :meth:`undo`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        dry_run: bool = False,
        on_applied: FaultListener = _ignore,
        on_rolled_back: FaultListener = _ignore,
        hosts: dict[str, ChaosToxiproxy] | None = None,
        seeds: TestSeeds | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(url, timeout=timeout)
        self.seeds = seeds
        self.prefix = prefix
        self.dry_run = dry_run
        self.on_applied = on_applied
        self.on_rolled_back = on_rolled_back
        self.faults: list[FaultRecord] = []
        self._undo: list[tuple[Callable[[], None], FaultRecord | None]] = []
        self._hosts = hosts if hosts is not None else {}

    # -- proxies ---------------------------------------------------------------------------

    def create(
        self,
        name: str,
        upstream: str,
        listen: str = "127.0.0.1:0",
        *,
        enabled: bool = True,
        seed: int | None = None,
    ) -> TrackedProxy:
        """Create a proxy for this test (deleted at teardown); it listens on a free port
        unless ``listen`` says otherwise, and its toxicity draws come from the test's seed."""
        if seed is None and self.seeds is not None:
            seed = self.seeds.int_seed(f"toxiproxy:{name}")
        proxy = super().create(self.prefix + name, upstream, listen, enabled=enabled, seed=seed)
        assert isinstance(proxy, TrackedProxy)
        self.defer(lambda: _missing_ok(proxy.delete))
        return proxy

    proxy = create

    def get(self, name: str) -> TrackedProxy:
        """An existing proxy by name (this worker's prefixed one first, on a shared server)."""
        if self.prefix:
            try:
                proxy = super().get(self.prefix + name)
            except NotFound:
                proxy = super().get(name)
        else:
            proxy = super().get(name)
        assert isinstance(proxy, TrackedProxy)
        return proxy

    __getitem__ = get

    def host(self, name: str) -> ChaosToxiproxy:
        """The client for another Toxiproxy host given as ``--chaos-toxiproxy NAME=URL``."""
        try:
            return self._hosts[name]
        except KeyError:
            known = ", ".join(self._hosts) or "none (only one Toxiproxy is configured)"
            raise KeyError(f"no Toxiproxy host named {name!r}; known hosts: {known}") from None

    # -- the undo log ----------------------------------------------------------------------

    def defer(self, undo: Callable[[], None], fault: FaultRecord | None = None) -> None:
        """Run ``undo`` at teardown (last in, first out)."""
        self._undo.append((undo, fault))

    def record(self, fault: FaultRecord, undo: Callable[[], None]) -> Callable[[], None]:
        """Register an applied fault; the returned function rolls it back exactly once."""
        self.faults.append(fault)
        self.on_applied(fault)
        done = False

        def rollback() -> None:
            nonlocal done
            if done:
                return
            done = True
            try:
                if not fault.dry_run:
                    undo()
            finally:
                fault.rolled_back_at = time.time()
                self.on_rolled_back(fault)

        self.defer(rollback, fault)
        return rollback

    def undo(self) -> list[BaseException]:
        """Undo everything this test did, newest first; return the errors met on the way so
        that one failure does not stop the rest of the clean-up."""
        errors: list[BaseException] = []
        while self._undo:
            action, _ = self._undo.pop()
            try:
                action()
            except Exception as error:
                errors.append(error)
        for host in self._hosts.values():
            errors.extend(host.undo())
        return errors


class TrackedProxy(Proxy):
    """A proxy whose toxics and outages are recorded and undone at teardown."""

    api: ChaosToxiproxy

    def add_toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int,
    ) -> Toxic:
        details: dict[str, Any] = {"stream": stream, "toxicity": toxicity, **attributes}
        if self.api.dry_run:
            toxic_name = name or f"{type}_{stream}"
            data = {
                "name": toxic_name,
                "type": type,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            }
            toxic: Toxic = DryRunToxic(self, data)
        else:
            toxic = super().add_toxic(
                type, name=name, stream=stream, toxicity=toxicity, **attributes
            )
        fault = FaultRecord(
            type, self.name, {"toxic": toxic.name, **details}, dry_run=self.api.dry_run
        )
        assert isinstance(toxic, TrackedToxic)
        toxic.rollback = self.api.record(fault, lambda: Toxic.remove(toxic, missing_ok=True))
        return toxic

    _rollback_down: Callable[[], None] | None = None

    def disable(self) -> None:
        """Take the proxy down: listener closed, connections cut, until enabled again."""
        if self._rollback_down is not None:
            return
        fault = FaultRecord("down", self.name, dry_run=self.api.dry_run)
        if not self.api.dry_run:
            super().disable()
        self._rollback_down = self.api.record(fault, lambda: _missing_ok(self._enable_on_server))

    def _enable_on_server(self) -> None:
        super().enable()

    def enable(self) -> None:
        rollback, self._rollback_down = self._rollback_down, None
        if rollback is not None:
            rollback()
        elif not self.api.dry_run:
            super().enable()


class TrackedToxic(Toxic):
    """A toxic whose removal counts as rolling its fault back."""

    rollback: Callable[[], None] | None = None

    def remove(self, *, missing_ok: bool = False) -> None:
        if self.rollback is None:
            super().remove(missing_ok=missing_ok)
            return
        rollback, self.rollback = self.rollback, None
        rollback()


class DryRunToxic(TrackedToxic):
    """A toxic recorded under ``--chaos-dry-run``: it exists only in the record."""

    def update(self, *, toxicity: float | None = None, **attributes: int) -> Toxic:
        self.attributes.update(attributes)
        if toxicity is not None:
            self.toxicity = toxicity
        return self


def _missing_ok(action: Callable[[], None]) -> None:
    """Run an undo step; what is already gone needs no undoing."""
    try:
        action()
    except NotFound:
        pass


ChaosToxiproxy.proxy_class = TrackedProxy
TrackedProxy.toxic_class = TrackedToxic
