"""The client a test gets from the ``toxiproxy`` fixture: it remembers every proxy it created
and every fault it applied, and undoes all of them at teardown whatever the outcome.

Under ``--chaos-dry-run`` faults are recorded and reported but never sent to the server;
proxies are still created, since they are plumbing, not faults. On a server the run does
not own, the names of the proxies and toxics it creates carry the run's identity
(``suffix``, see :mod:`pytest_chaos.leftovers.identity`), so that they are removed even if
the run dies, and runs (xdist workers among them) cannot collide; on a server that each
xdist worker starts for itself, proxy names get the worker's prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, final

from pytest_chaos.core.faultlog import FaultListener, FaultLog, FaultRecord, ignore_fault
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.leftovers.identity import untag
from pytest_chaos.proxy.client import Proxy, Toxic, Toxiproxy
from pytest_chaos.proxy.errors import NotFound
from pytest_chaos.proxy.snapshot import ProxyState, ToxicSnapshot


@final
class ChaosToxiproxy(Toxiproxy):
    """A Toxiproxy client whose proxies and faults are undone by :meth:`undo`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        suffix: str = "",
        dry_run: bool = False,
        on_applied: FaultListener = ignore_fault,
        on_rolled_back: FaultListener = ignore_fault,
        hosts: dict[str, ChaosToxiproxy] | None = None,
        seeds: TestSeeds | None = None,
        timeout: float = 10.0,
        on_created: Callable[[TrackedProxy, str], None] | None = None,
    ) -> None:
        super().__init__(url, timeout=timeout)
        self.seeds = seeds
        self.on_created = on_created
        self.prefix = prefix
        self.suffix = suffix
        self.dry_run = dry_run
        self.log = FaultLog(dry_run=dry_run, on_applied=on_applied, on_rolled_back=on_rolled_back)
        self._hosts = hosts if hosts is not None else {}
        # what this test made: removing one of its own toxics rolls its fault back; deleting
        # or changing anything else (a session proxy, its toxics) is put back at teardown
        self._own_proxies: set[str] = set()
        self._own_toxics: dict[tuple[str, str], Callable[[], None]] = {}

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
        proxy = super().create(self.server_name(name), upstream, listen, enabled=enabled, seed=seed)
        assert isinstance(proxy, TrackedProxy)
        self._own_proxies.add(proxy.name)
        self.defer(lambda: _missing_ok(proxy.delete))
        self._created(proxy)
        return proxy

    proxy = create

    def populate(self, proxies: list[Mapping[str, Any]]) -> list[Proxy]:
        """Create or replace several proxies at once, as :meth:`create` does one: new ones
        are deleted at teardown, replaced ones come back as they were."""
        specs: list[Mapping[str, Any]] = []
        for given in proxies:
            spec = {**given, "name": self.server_name(str(given.get("name", "")))}
            if "seed" not in spec and self.seeds is not None:
                spec["seed"] = self.seeds.int_seed(f"toxiproxy:{given.get('name', '')}")
            specs.append(spec)
        names = {spec["name"] for spec in specs}
        existing = {name: p for name, p in self.proxies().items() if name in names}
        restore = {name: _put_back(proxy) for name, proxy in existing.items()}
        made = super().populate(specs)
        for proxy in made:
            if proxy.name not in existing:
                self._own_proxies.add(proxy.name)
                self.defer(partial(_missing_ok, proxy.delete))
            elif proxy.name not in self._own_proxies:
                before = existing[proxy.name]
                if (proxy.listen, proxy.upstream) != (before.listen, before.upstream):
                    self.defer(restore[proxy.name])
        for proxy in made:
            assert isinstance(proxy, TrackedProxy)
            self._created(proxy)
        return made

    def server_name(self, name: str) -> str:
        """The name the server knows a proxy by that this client creates as ``name``."""
        return self.prefix + name + self.suffix

    def _created(self, proxy: TrackedProxy) -> None:
        if self.on_created is not None:
            name = proxy.name.removeprefix(self.prefix)
            self.on_created(proxy, name.removesuffix(self.suffix) if self.suffix else name)

    def get(self, name: str) -> TrackedProxy:
        """An existing proxy by name: one this run created (its name carries the worker's
        prefix or the run's identity), else one of that very name."""
        own = self.server_name(name)
        try:
            proxy = super().get(own)
        except NotFound:
            if own == name:
                raise
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

    def close(self) -> None:
        """Close the connections to this server and to every other host."""
        for host in self._hosts.values():
            host.close()
        super().close()

    # -- the undo log ----------------------------------------------------------------------

    @property
    def faults(self) -> list[FaultRecord]:
        """The faults applied through this client, oldest first."""
        return self.log.faults

    def defer(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` at teardown (last in, first out)."""
        self.log.defer(undo)

    def record(self, fault: FaultRecord, undo: Callable[[], None]) -> Callable[[], None]:
        """Register an applied fault; the returned function rolls it back exactly once."""
        return self.log.record(fault, undo)

    def undo(self) -> list[BaseException]:
        """Undo everything this test did, newest first; return the errors met on the way so
        that one failure does not stop the rest of the clean-up."""
        errors = self.log.undo()
        for host in self._hosts.values():
            errors.extend(host.undo())
        return errors


@final
class TrackedProxy(Proxy):
    """A proxy whose toxics and outages are recorded and undone at teardown."""

    api: ChaosToxiproxy

    @property
    def label(self) -> str:
        """Its name as the test gave it, for records and reports."""
        return untag(self.name)

    def toxic(self, name: str) -> Toxic:
        """A toxic by name: one this run added (its name carries the run's identity), else
        one of that very name."""
        if self.api.suffix and not name.endswith(self.api.suffix):
            try:
                return super().toxic(name + self.api.suffix)
            except NotFound:
                pass
        return super().toxic(name)

    def add_toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int | str,
    ) -> Toxic:
        details: dict[str, Any] = {"stream": stream, "toxicity": toxicity, **attributes}
        if self.api.suffix:  # the server's default name, marked with the run's identity
            name = (name or f"{type}_{stream}") + self.api.suffix
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
            type, self.label, {"toxic": untag(toxic.name), **details}, dry_run=self.api.dry_run
        )
        key = (self.name, toxic.name)

        def undo() -> None:
            self.api._own_toxics.pop(key, None)
            Toxic.remove(toxic, missing_ok=True)

        self.api._own_toxics[key] = self.api.record(fault, undo)
        return toxic

    def delete(self) -> None:
        """Delete the proxy; one this test did not create comes back at teardown, with the
        toxics it had."""
        if self.name in self.api._own_proxies:
            super().delete()
            return
        self.api.defer(_put_back(self))
        super().delete()

    def update(self, **changes: Any) -> Proxy:
        """Change the proxy; on one this test did not create, the old ``listen``,
        ``upstream`` and ``enabled`` come back at teardown."""
        before = {key: getattr(self, key) for key in changes if key in _RESTORABLE}
        super().update(**changes)
        if before and self.name not in self.api._own_proxies:
            self.api.defer(lambda: _missing_ok(lambda: Proxy.update(self, **before)))
        return self

    _rollback_down: Callable[[], None] | None = None

    def disable(self) -> None:
        """Take the proxy down: listener closed, connections cut, until enabled again."""
        if self._rollback_down is not None:
            return
        fault = FaultRecord("down", self.label, dry_run=self.api.dry_run)
        if not self.api.dry_run:
            Proxy.update(self, enabled=False)  # the fault's rollback is its undo
        self._rollback_down = self.api.record(fault, lambda: _missing_ok(self._enable_on_server))

    def _enable_on_server(self) -> None:
        Proxy.update(self, enabled=True)

    def enable(self) -> None:
        rollback, self._rollback_down = self._rollback_down, None
        if rollback is not None:
            rollback()
        elif not self.api.dry_run:
            self.update(enabled=True)  # not down by this test: restored at teardown


class TrackedToxic(Toxic):
    """A toxic whose removal counts as rolling its fault back, if this test applied it;
    any other toxic (a session proxy's) is put back at teardown as it was."""

    api: ChaosToxiproxy

    def __init__(self, proxy: Proxy, data: Mapping[str, Any]) -> None:
        super().__init__(proxy, data)
        assert isinstance(proxy.api, ChaosToxiproxy)
        self.api = proxy.api

    @property
    def _own(self) -> bool:
        key = (self.proxy.name, self.name)
        return key in self.api._own_toxics or self.proxy.name in self.api._own_proxies

    def remove(self, *, missing_ok: bool = False) -> None:
        rollback = self.api._own_toxics.get((self.proxy.name, self.name))
        if rollback is not None:
            rollback()
            return
        own, state = self._own, ToxicSnapshot.of(self)
        try:
            super().remove()
        except NotFound:
            if not missing_ok:
                raise
            return
        if not own:
            self.api.defer(lambda: _missing_ok(lambda: state.add_to(self.proxy, self.name)))

    def update(self, *, toxicity: float | None = None, **attributes: int) -> Toxic:
        own, before = self._own, (self.toxicity, dict(self.attributes))
        super().update(toxicity=toxicity, **attributes)
        if not own:
            self.api.defer(
                lambda: _missing_ok(lambda: Toxic.update(self, toxicity=before[0], **before[1]))
            )
        return self


@final
class DryRunToxic(TrackedToxic):
    """A toxic recorded under ``--chaos-dry-run``: it exists only in the record."""

    def update(self, *, toxicity: float | None = None, **attributes: int) -> Toxic:
        self.attributes.update(attributes)
        if toxicity is not None:
            self.toxicity = toxicity
        return self


_RESTORABLE = ("listen", "upstream", "enabled")


def _put_back(proxy: Proxy) -> Callable[[], None]:
    """An undo step that makes ``proxy`` again as it is now, with its toxics."""
    api, name, state = proxy.api, proxy.name, ProxyState.of(proxy)

    def put_back() -> None:
        _missing_ok(lambda: api.request("DELETE", f"/proxies/{name}"))
        state.recreate(api, name)

    return put_back


def _missing_ok(action: Callable[[], Any]) -> None:
    """Run an undo step; what is already gone needs no undoing."""
    try:
        action()
    except NotFound:
        pass


ChaosToxiproxy.proxy_class = TrackedProxy
TrackedProxy.toxic_class = TrackedToxic
