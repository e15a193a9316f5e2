"""The chaos state of one pytest session: settings, seed, the Toxiproxy backends, and the
supervisor that ends what the session started however the session ends.

Backends and the supervisor start on first use, so a session whose tests never ask for
``toxiproxy`` or ``service`` pays nothing for them; they stop when the session ends,
whatever happened.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any, final

import pytest

from pytest_chaos.core import redaction
from pytest_chaos.core.faultlog import FaultLog, FaultRecord
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.leftovers.supervisor import Supervisor
from pytest_chaos.plugin import settings as settings_module
from pytest_chaos.proxy.backends import Backend, BackendError, make_backend

if TYPE_CHECKING:
    from pytest_chaos._net.containers import ContainerEngine
    from pytest_chaos.inject import ChaosMonkey
    from pytest_chaos.proxy.tracked import ChaosToxiproxy

WORKER_SEED_KEY = "chaos_seed"


@final
class ChaosSession:
    """Everything chaos tests of this session share."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        workerinput: dict[str, Any] = getattr(config, "workerinput", {})
        self.worker_id: str | None = workerinput.get("workerid")
        loaded = settings_module.load(config)
        if WORKER_SEED_KEY in workerinput:  # xdist: every worker uses the controller's seed
            loaded = replace(loaded, seed=int(workerinput[WORKER_SEED_KEY]), seed_origin="given")
        self.settings = loaded
        self.session_id = uuid.uuid4().hex[:12]
        self.supervisor = Supervisor()
        #: what the sweep of dead runs' leftovers at session start did, in one line
        self.leftovers: str | None = None
        try:
            self._backends: dict[str, Backend] = make_backend(
                loaded.toxiproxy,
                seed=loaded.seed,
                session_id=self.session_id,
                supervisor=self.supervisor,
            )
        except BackendError as error:
            raise pytest.UsageError(f"--chaos-toxiproxy: {error}") from None
        self._urls: dict[str, str] = {}
        self._engine: ContainerEngine | None = None
        self._outer_redactor = redaction.activate(redaction.Redactor(loaded.redact))

    # -- start-up and reporting ------------------------------------------------------------

    def remember_seed(self) -> None:
        """Keep the seed in the pytest cache for ``--chaos-seed last``."""
        cache = getattr(self.config, "cache", None)
        if self.worker_id is None and cache is not None:
            cache.set(settings_module.CACHE_KEY_SEED, self.settings.seed)

    def sweep_leftovers(self) -> None:
        """Remove what runs that are no longer alive left on the servers of this session
        that it does not own, and their disk fill files (see :mod:`.leftovers.sweep`)."""
        from pytest_chaos.leftovers.sweep import sweep_dead_runs

        self.leftovers = sweep_dead_runs(self._foreign_urls(), self.supervisor.folder)

    def header(self) -> list[str]:
        line = f"chaos: seed={self.settings.seed} toxiproxy={self.settings.toxiproxy.describe()}"
        lines = [line + (" dry-run" if self.settings.dry_run else "")]
        lines += [self.leftovers] if self.leftovers else []
        return [redaction.redact_text(line) for line in lines]

    def worker_input(self) -> dict[str, Any]:
        return {WORKER_SEED_KEY: self.settings.seed}

    # -- toxiproxy -------------------------------------------------------------------------

    @property
    def shared_server(self) -> bool:
        """Whether several workers may talk to the same server (everything but embedded)."""
        return self.settings.toxiproxy.kind != "embedded"

    def _foreign_urls(self) -> list[str]:
        """The API URLs of the servers this session uses but does not own."""
        target = self.settings.toxiproxy
        if target.kind == "url":
            return [target.value]
        return list(target.hosts.values())

    def urls(self) -> dict[str, str]:
        """The API URL of every backend, starting them on first call."""
        for name, backend in self._backends.items():
            if name not in self._urls:
                try:
                    self._urls[name] = backend.start()
                except BackendError as error:
                    raise pytest.UsageError(f"--chaos-toxiproxy: {error}") from None
        return dict(self._urls)

    def toxiproxy(self, item: pytest.Item | None) -> ChaosToxiproxy:
        """A tracking client per backend for one test (or, with None, for the session)."""
        from pytest_chaos.proxy.tracked import ChaosToxiproxy

        # on a server the run does not own, names carry the run's identity (which also
        # keeps xdist workers apart); on one it starts per worker, the worker's prefix
        foreign = bool(self._foreign_urls())
        suffix = self.supervisor.identity.suffix if foreign else ""
        prefix = (
            f"{self.worker_id}-" if self.worker_id and self.shared_server and not foreign else ""
        )

        def client(url: str, hosts: dict[str, ChaosToxiproxy] | None = None) -> ChaosToxiproxy:
            return ChaosToxiproxy(
                url,
                prefix=prefix,
                suffix=suffix,
                dry_run=self.settings.dry_run,
                on_applied=lambda fault: self._applied(item, fault),
                on_rolled_back=lambda fault: self._rolled_back(item, fault),
                hosts=hosts,
                seeds=self.seeds(item.nodeid if item is not None else "<session>"),
                on_created=lambda proxy, name: self.config.hook.pytest_chaos_proxy_created(
                    item=item, proxy=proxy, name=name
                ),
            )

        urls = self.urls()
        hosts = {name: client(url) for name, url in urls.items()} if len(urls) > 1 else {}
        return client(self.default_url(), hosts)

    def started_urls(self) -> list[str]:
        """The API URLs of the backends started so far (asking starts none)."""
        return list(self._urls.values())

    def default_url(self) -> str:
        """The first backend's URL: the one the ``toxiproxy`` fixture talks to."""
        return next(iter(self.urls().values()))

    def fault_log(self, item: pytest.Item | None) -> FaultLog:
        """A log for the faults of one test (or, with None, of the session), reported
        through the hooks and only recorded under dry run."""
        return FaultLog(
            dry_run=self.settings.dry_run,
            on_applied=lambda fault: self._applied(item, fault),
            on_rolled_back=lambda fault: self._rolled_back(item, fault),
        )

    def _applied(self, item: pytest.Item | None, fault: FaultRecord) -> None:
        self.config.hook.pytest_chaos_fault_applied(item=item, fault=fault)

    def _rolled_back(self, item: pytest.Item | None, fault: FaultRecord) -> None:
        self.config.hook.pytest_chaos_fault_rolled_back(item=item, fault=fault)

    def monkey(self, item: pytest.Item) -> ChaosMonkey:
        """The ``chaos_monkey`` of one test: enabled, striking every matching call unless a
        fault says otherwise, seeded from the test's stream, logging through the hooks."""
        from pytest_chaos.inject import ChaosConfig, ChaosMonkey

        return ChaosMonkey(
            ChaosConfig(enabled=True, failure_rate=1.0),
            seed=self.seeds(item.nodeid).int_seed("monkey"),
            log=self.fault_log(item),
        )

    def container_engine(self) -> ContainerEngine:
        """The session's container engine for ``service.container``; it connects (and
        sweeps the containers of dead sessions) when a test first starts a container."""
        if self._engine is None:
            from pytest_chaos._net.containers import ContainerEngine

            self._engine = ContainerEngine(self.session_id)
        return self._engine

    def seeds(self, nodeid: str) -> TestSeeds:
        return TestSeeds(self.settings.seed, nodeid)

    def close(self) -> None:
        """Stop the backends, then the supervisor: it ends whatever processes an
        interrupted teardown left, and removes this run's proxies, toxics and fill files."""
        try:
            for backend in self._backends.values():
                backend.stop()
            self._urls.clear()
        finally:
            self.supervisor.close()
            if self._engine is not None:
                self._engine.close()
            redaction.activate(self._outer_redactor)


#: Where the session's chaos state is kept, on pytest's config.
SESSION = pytest.StashKey[ChaosSession]()


def chaos_session(config: pytest.Config) -> ChaosSession:
    return config.stash[SESSION]


def session_seed(config: pytest.Config) -> int:
    return chaos_session(config).settings.seed


@pytest.fixture
def chaos_seeds(request: pytest.FixtureRequest) -> TestSeeds:
    """This test's random streams: ``chaos_seeds("purpose")`` is a seeded ``random.Random``."""
    return chaos_session(request.config).seeds(request.node.nodeid)
