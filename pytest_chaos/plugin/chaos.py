"""The ``chaos`` fixture: experiments wired to the test that runs them: its fixtures (to
find the proxies and services faults name), its seed, the hooks, and the journals."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

import pytest

from pytest_chaos.core.redaction import redact_in_place
from pytest_chaos.core.seeding import replay_command
from pytest_chaos.experiment import (
    Experiment,
    ExperimentOptions,
    ExperimentRun,
    Journal,
    write_journal,
)
from pytest_chaos.faults import Fault, FaultLog
from pytest_chaos.plugin import progress

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from pytest_chaos.plugin.session import ChaosSession

#: The fixture each fault constructor of :mod:`pytest_chaos.faults` looks its target up in.
_FIXTURE_OF = {
    **dict.fromkeys(
        ("toxic", "latency", "bandwidth", "timeout", "reset_peer", "down"), "toxiproxy"
    ),
    **dict.fromkeys(("kill", "stop", "pause"), "service"),
    "patch": "chaos_monkey",
    "http": "chaos_http",
}


@final
class FixtureResolver:
    """Finds what faults name among the test's fixtures, fetched on first need from the
    test's own thread (faults are applied from the experiment's conductor thread)."""

    def __init__(self, request: pytest.FixtureRequest, log: FaultLog) -> None:
        self._request = request
        self._log = log
        self._fixtures: dict[str, Any] = {}

    def prepare(self, faults: Sequence[Fault]) -> None:
        """Fetch now the fixtures that ``faults`` will need."""
        for fault in faults:
            name = _FIXTURE_OF.get(fault.func or fault.kind)
            if name is not None:
                self._fixture(name)

    def _fixture(self, name: str) -> Any:
        if name not in self._fixtures:
            self._fixtures[name] = self._request.getfixturevalue(name)
        return self._fixtures[name]

    def fetched(self, name: str) -> Any:
        """The fixture ``name`` if the test or an experiment has asked for it, else None."""
        if name in self._fixtures:
            return self._fixtures[name]
        return getattr(self._request.node, "funcargs", {}).get(name)

    def proxy(self, name: str) -> Any:
        return self._fixture("toxiproxy")[name]

    def service(self, name: str) -> Any:
        return self._fixture("service")[name]

    def monkey(self) -> Any:
        return self._fixture("chaos_monkey")

    def http(self) -> Any:
        return self._fixture("chaos_http")

    def log(self) -> FaultLog:
        return self._log


@final
class Chaos:
    """What the ``chaos`` fixture gives a test: ``chaos.experiment(...)`` and
    ``chaos.load`` (traffic to run during it), with every experiment's journal kept in
    ``chaos.journals`` (and written to ``--chaos-journal-dir`` when given)."""

    def __init__(self, request: pytest.FixtureRequest, session: ChaosSession) -> None:
        from pytest_chaos.steady.load import Load

        self.load = Load
        self.journals: list[Journal] = []
        self._request = request
        self._item = request.node
        self._session = session
        self._log = session.fault_log(request.node)
        self._resolver = FixtureResolver(request, self._log)

    @property
    def seed(self) -> int:
        return self._session.settings.seed

    def experiment(self, title: str, **options: Unpack[ExperimentOptions]) -> Journal:
        """Run an experiment now: the steady state before, then the method (``method``'s
        faults on their timeline with ``load`` running and the hypothesis watched as
        ``strategy`` says), the rollback, and the steady state after. Returns the journal;
        a deviation or a halt fails the test with an account of it, a system not steady
        before the faults makes it error. The options are :meth:`Experiment.build`'s."""
        __tracebackhide__ = True
        experiment = Experiment.build(title, **options)
        run = self._start(experiment)
        try:
            run.execute()
        except BaseException as error:
            self._end(run, error)
        self._end(run, None)
        return run.journal

    def run_file(self, path: str | os.PathLike[str], **options: Any) -> Journal:
        """Run a Chaos Toolkit experiment file (JSON or YAML) as ``chaos run`` would, with
        chaostoolkit-lib; its journal is kept and reported like an experiment's, and the
        test fails as the journal says (not steady before: an error). The options are
        :meth:`pytest_chaos.ctk.files.ExperimentFile.build`'s."""
        __tracebackhide__ = True
        from pytest_chaos.ctk import files
        from pytest_chaos.plugin import progress

        spec = files.ExperimentFile.build(path, **options)
        item = self._item
        item.config.hook.pytest_chaos_experiment_started(item=item, experiment=spec)
        around = files.Surroundings(
            seed=self._session.seeds(item.nodeid).int_seed("chaostoolkit"),
            toxiproxy_url=self._session.default_url,
            toxiproxy_shared=self._session.worker_id is not None and self._session.shared_server,
            dry_run=self._session.settings.dry_run,
            on_phase=progress.reporter(item, spec.title, spec.paused_s()) or (lambda _: None),
        )
        journal, signalled = files.run(spec, around)
        journal["pytest_chaos"] = {
            "seed": self.seed,
            "replay": self._replay_command(),
            "source": str(spec.path),
            "dry_run": around.dry_run,
            **self._extra(),
        }
        self._keep(journal)
        item.config.hook.pytest_chaos_experiment_finished(
            item=item, experiment=spec, journal=journal
        )
        if signalled:
            raise KeyboardInterrupt(f"{spec.title!r} was interrupted")
        failure = files.outcome(spec, journal)
        if failure is not None:
            raise failure
        return journal

    @contextmanager
    def around_body(self, experiment: Experiment) -> Iterator[None]:
        """The declarative form: the test's body is the method of ``experiment``."""
        __tracebackhide__ = True
        run = self._start(experiment)
        try:
            run.before()
            with run.method():
                yield
            run.after()
        except BaseException as error:
            self._end(run, error)
        self._end(run, None)

    def _start(self, experiment: Experiment) -> ExperimentRun:
        self._resolver.prepare(experiment.method)
        self._item.config.hook.pytest_chaos_experiment_started(
            item=self._item, experiment=experiment
        )
        return ExperimentRun(
            experiment,
            resolver=self._resolver,
            seed=self.seed,
            replay=self._replay_command(),
            on_phase=progress.reporter(
                self._item, experiment.title, experiment.method_s + 2 * experiment.settle
            ),
            dry_run=self._session.settings.dry_run,
            extra=self._extra,
        )

    def _end(self, run: ExperimentRun, error: BaseException | None) -> None:
        """Close the run: its outcome is raised (or ``error``, re-raised), its journal
        kept and handed to the hook whatever happened."""
        __tracebackhide__ = True
        try:
            run.finish(error)
        finally:
            self._keep(run.journal)
            self._item.config.hook.pytest_chaos_experiment_finished(
                item=self._item, experiment=run.experiment, journal=run.journal
            )
        if error is not None:
            raise error

    def _extra(self) -> dict[str, Any]:
        """pytest-chaos's own journal fields: the test, and what the monkey injected."""
        extra: dict[str, Any] = {"nodeid": self._item.nodeid}
        monkey = self._resolver.fetched("chaos_monkey")
        if monkey is not None:
            extra["injections"] = [injection.to_json() for injection in monkey.injections]
        if "pytest_chaos.plugin.canary" in sys.modules:  # the test used the canary fixture
            from pytest_chaos.plugin.canary import ROLLOUTS

            rollouts = self._item.stash.get(ROLLOUTS, [])
            extra["rollouts"] = [result.to_json() for result in rollouts]
        return extra

    def _keep(self, journal: Journal) -> None:
        """Keep ``journal``, its secrets redacted first (for whoever holds it), and write it
        to ``--chaos-journal-dir``."""
        redact_in_place(journal)
        self.journals.append(journal)
        folder = self._session.settings.journal_dir
        if folder is not None:
            name = re.sub(r"[^\w.-]+", "_", self._item.nodeid).strip("_")
            suffix = f"-{len(self.journals)}" if len(self.journals) > 1 else ""
            path = write_journal(journal, Path(folder, f"{name}{suffix}.json"))
            journal["pytest_chaos"]["path"] = str(path)

    def _replay_command(self) -> str:
        return replay_command(self.seed, self._item.nodeid)

    def close(self) -> list[BaseException]:
        """Undo what a user's own actions left (an experiment's rollback normally has)."""
        return self._log.undo()


#: A test's ``chaos`` fixture, for the hook that runs a marker's experiment around its body.
CHAOS = pytest.StashKey[Chaos]()
