"""Chaos Toolkit experiment files (JSON or YAML), run under pytest.

chaostoolkit-lib, the library the ``chaos`` command is made of, loads, validates and runs
the file, so its providers (python, http, process), tolerances, configuration and secrets
(from the environment too), pauses, strategies and rollbacks mean exactly what they mean
under ``chaos run``. pytest-chaos adds what a test gets: the journal kept, written and
reported, the test's outcome read from it, the session's seed for Python's ``random``, the
session's Toxiproxy for chaostoolkit-toxiproxy's activities (restored afterwards, as is the
environment those activities write to), and ``--chaos-dry-run`` as Chaos Toolkit's dry run
of actions.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from pytest_chaos.core.checks import seconds
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.experiment import Deviated, ExperimentError, Journal, NotSteady
from pytest_chaos.experiment import strategies as runtime

SUFFIXES = (".json", ".yaml", ".yml")
#: chaostoolkit-toxiproxy reads the server's address from these configuration keys.
TOXIPROXY_KEYS = ("toxiproxy_url", "toxiproxy_host", "toxiproxy_port")


class InvalidExperimentFile(ChaosError, ValueError):
    """The file cannot be read, or chaostoolkit-lib refuses the experiment in it."""


class ExperimentFailed(ExperimentError, AssertionError):
    """Chaos Toolkit ended the experiment ``failed``, ``aborted`` or ``interrupted``."""


@final
@dataclass(frozen=True)
class ExperimentFile:
    """A Chaos Toolkit experiment file, and how to run it: ``configuration`` values (as
    ``chaos run --var``), ``secrets`` and ``var_files`` (as ``--var-file``), the hypothesis
    and rollback strategies (None: the file's ``runtime``, else ``default``, as the
    ``chaos`` command decides), ``frequency_s`` and ``fail_fast`` (as
    ``--hypothesis-frequency`` and ``--fail-fast``)."""

    path: Path
    configuration: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    var_files: tuple[Path, ...] = ()
    strategy: str | None = None
    rollback_strategy: str | None = None
    frequency_s: float = 1.0
    fail_fast: bool = False
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        path: str | os.PathLike[str],
        *,
        configuration: Mapping[str, Any] | None = None,
        secrets: Mapping[str, Mapping[str, Any]] | None = None,
        var_files: Sequence[str | os.PathLike[str]] = (),
        strategy: str | None = None,
        rollback_strategy: str | None = None,
        frequency_s: float = 1.0,
        fail_fast: bool = False,
    ) -> ExperimentFile:
        """The file and its run, every argument checked and the experiment validated by
        chaostoolkit-lib now: nothing runs if one is wrong."""
        source = Path(path)
        if source.suffix not in SUFFIXES or not source.is_file():
            raise InvalidExperimentFile(
                f"{str(path)!r}: give a Chaos Toolkit experiment file ({', '.join(SUFFIXES)})"
            )
        for name, given in (("configuration", configuration), ("secrets", secrets)):
            if given is not None and not isinstance(given, Mapping):
                raise TypeError(f"{name}={given!r}: use a dict")
        if isinstance(var_files, (str, os.PathLike)):
            var_files = [var_files]
        files = tuple(Path(file) for file in var_files)
        for file in files:
            if not file.is_file():
                raise InvalidExperimentFile(f"var_files: {str(file)!r} is not a file")
        if strategy is not None:
            strategy = runtime.hypothesis_strategy(strategy)
        if rollback_strategy is not None:
            rollback_strategy = runtime.rollback_strategy(rollback_strategy)
        if not isinstance(fail_fast, bool):
            raise TypeError(f"fail_fast={fail_fast!r}: use True or False")
        spec = cls(
            source,
            dict(configuration or {}),
            {key: dict(value) for key, value in (secrets or {}).items()},
            files,
            strategy,
            rollback_strategy,
            seconds("frequency_s", frequency_s, allow_zero=False),
            fail_fast,
            _load(source),
        )
        try:
            spec.runtime()  # the file's own runtime section, when no argument overrides it
        except ValueError as error:
            raise InvalidExperimentFile(f"{source}: runtime: {error}") from None
        return spec

    @property
    def title(self) -> str:
        return str(self.document.get("title", self.path.name))

    def runtime(self) -> tuple[str, str]:
        """The hypothesis and rollback strategies, decided as the ``chaos`` command does:
        the arguments, else the file's ``runtime`` section, else ``default``."""
        declared = self.document.get("runtime") or {}
        hypothesis = (declared.get("hypothesis") or {}).get("strategy", "default")
        rollbacks = (declared.get("rollbacks") or {}).get("strategy", "default")
        return (
            runtime.hypothesis_strategy(self.strategy or hypothesis),
            runtime.rollback_strategy(self.rollback_strategy or rollbacks),
        )

    def paused_s(self) -> float:
        """The seconds the activities' pauses add up to: how long the run lasts at least."""
        total = 0.0
        for activity in (*self.document.get("method", []), *self.document.get("rollbacks", [])):
            for pause in (activity.get("pauses") or {}).values():
                total += pause if isinstance(pause, (int, float)) else 0.0
        return total

    def uses_toxiproxy(self) -> bool:
        """Whether an activity is chaostoolkit-toxiproxy's, or the configuration names a
        Toxiproxy server."""
        configuration = self.document.get("configuration") or {}
        return any(key in configuration for key in TOXIPROXY_KEYS) or any(
            str(provider.get("module", "")).startswith("chaostoxi")
            for provider in _providers(self.document)
        )


@final
@dataclass(frozen=True)
class Surroundings:
    """What the test gives the run: its seed (for Python's ``random``), the Toxiproxy
    API URL (asked for only when the experiment uses one) and whether other pytest-xdist
    workers share that server, dry run, and a progress line for each phase."""

    seed: int
    toxiproxy_url: Callable[[], str]
    toxiproxy_shared: bool = False
    dry_run: bool = False
    on_phase: Callable[[str], None] = lambda phase: None


def run(spec: ExperimentFile, around: Surroundings) -> tuple[Journal, bool]:
    """Run the experiment as ``chaos run`` would; the journal, and whether Ctrl-C (or
    another exit signal) interrupted it: chaostoolkit-lib keeps that to itself."""
    from chaoslib import merge_vars
    from chaoslib.experiment import run_experiment
    from chaoslib.run import RunEventHandler
    from chaoslib.types import Dry, Schedule, Strategy

    class Progress(RunEventHandler):  # type: ignore[misc]  # chaoslib ships no types
        signalled = False

        def start_hypothesis_before(self, experiment: Any) -> None:
            around.on_phase("steady state before")

        def start_method(self, experiment: Any) -> None:
            around.on_phase("method")

        def start_hypothesis_after(self, experiment: Any) -> None:
            around.on_phase("steady state after")

        def start_rollbacks(self, experiment: Any) -> None:
            around.on_phase("rollbacks")

        def signal_exit(self) -> None:
            self.signalled = True

    experiment = json.loads(json.dumps(spec.document))  # chaostoolkit-lib writes into it
    hypothesis, rollbacks = spec.runtime()
    config_vars, secret_vars = merge_vars(
        dict(spec.configuration), [str(f) for f in spec.var_files]
    )
    for target, values in spec.secrets.items():
        secret_vars.setdefault(target, {}).update(values)
    if around.dry_run:
        experiment["dry"] = Dry.ACTIONS
    progress = Progress()
    with (
        _kept_environment(),
        _seeded_random(around.seed),
        _restored_toxiproxy(spec, around, experiment),
    ):
        journal = run_experiment(
            experiment,
            settings={
                "runtime": {
                    "hypothesis": {"strategy": hypothesis},
                    "rollbacks": {"strategy": rollbacks},
                }
            },
            experiment_vars=(config_vars, secret_vars),
            strategy=Strategy.from_string(hypothesis),
            schedule=Schedule(
                continuous_hypothesis_frequency=spec.frequency_s, fail_fast=spec.fail_fast
            ),
            event_handlers=[progress],
        )
    if around.dry_run:
        journal["experiment"]["dry"] = Dry.ACTIONS.value
    return journal, progress.signalled


def outcome(spec: ExperimentFile, journal: Journal) -> ExperimentError | None:
    """What the test makes of the journal: not steady before the method (an error), a
    deviation (a failure), a status other than ``completed`` (a failure), or None when
    ``chaos run`` would have exited 0."""
    before = journal["steady_states"].get("before")
    if before is not None and not before["steady_state_met"]:
        return NotSteady(_account(spec, journal, "not in steady state before chaos"), journal)
    if journal.get("deviated"):
        return Deviated(_account(spec, journal, "deviated from its steady state"), journal)
    if journal.get("status") != "completed":
        return ExperimentFailed(_account(spec, journal, f"ended {journal.get('status')}"), journal)
    return None


def _account(spec: ExperimentFile, journal: Journal, what: str) -> str:
    """The failure message: the probes out of tolerance, the activities that failed."""
    lines = [f"chaos experiment {spec.title!r} ({spec.path.name}) {what}:"]
    states = journal["steady_states"]
    checked = [
        ("before the method", states.get("before")),
        ("after the method", states.get("after")),
    ]
    checked += [("during the method", state) for state in states.get("during") or []]
    for phase, state in checked:
        for probe in (state or {}).get("probes", []):
            if not probe.get("tolerance_met", True):
                output = _excerpt(probe.get("output"))
                lines.append(f"  {phase}: {probe['activity']['name']}: {output} is not within")
                lines.append(f"    its tolerance {_excerpt(probe['activity'].get('tolerance'))}")
    for key in ("run", "rollbacks"):
        for record in journal.get(key) or []:
            if record.get("status") == "failed":
                error = (record.get("exception") or ["failed"])[-1].strip()
                lines.append(f"  {key}: {record['activity']['name']}: {error}")
    ours = journal.get("pytest_chaos") or {}
    if ours.get("seed") is not None:
        replay = f"; replay: {ours['replay']}" if ours.get("replay") else ""
        lines.append(f"  seed {ours['seed']}{replay}")
    return "\n".join(lines)


def _excerpt(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _load(path: Path) -> dict[str, Any]:
    """The experiment in ``path``, validated by chaostoolkit-lib as ``chaos run`` does."""
    try:
        from chaoslib.exceptions import ChaosException
        from chaoslib.experiment import ensure_experiment_is_valid
        from chaoslib.loader import parse_experiment_from_file
    except ImportError:
        raise ImportError(
            "running Chaos Toolkit experiment files needs chaostoolkit-lib: "
            "pip install 'pytest-chaos[chaostoolkit]'"
        ) from None
    try:
        document = parse_experiment_from_file(str(path))
        ensure_experiment_is_valid(document)
    except (ChaosException, ValueError, OSError) as error:
        raise InvalidExperimentFile(f"{path}: {error}") from None
    return dict(document)


def _providers(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every activity provider in an experiment document (tolerance probes included)."""
    if isinstance(node, Mapping):
        provider = node.get("provider")
        if isinstance(provider, Mapping):
            yield provider
        for value in node.values():
            yield from _providers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _providers(value)


@contextmanager
def _kept_environment() -> Iterator[None]:
    """The process environment as it was: chaostoolkit-toxiproxy writes ``<proxy>_PORT``
    into it, and a ``.env`` var file loads into it."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        for key, value in before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextmanager
def _seeded_random(seed: int) -> Iterator[None]:
    """Python's ``random`` seeded from the test for the run, and put back after it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


@contextmanager
def _restored_toxiproxy(
    spec: ExperimentFile, around: Surroundings, experiment: dict[str, Any]
) -> Iterator[None]:
    """For an experiment that uses Toxiproxy: point it at the session's server (its
    ``toxiproxy_url``, unless the run's configuration names one), and put the server's
    proxies and toxics back as they were afterwards, whatever the rollbacks did."""
    if not spec.uses_toxiproxy():
        yield
        return
    if around.toxiproxy_shared:
        raise ValueError(
            f"{spec.path.name} uses Toxiproxy, whose proxies are put back as they were "
            "after the run: that needs a server of its own, not one that other pytest-xdist "
            "workers share; run it without xdist, or with the embedded proxy (the default)"
        )
    from pytest_chaos.proxy.client import Toxiproxy
    from pytest_chaos.proxy.snapshot import restore, take

    url = around.toxiproxy_url()
    configuration = experiment.setdefault("configuration", {})
    configuration["toxiproxy_url"] = spec.configuration.get("toxiproxy_url", url)
    with Toxiproxy(url) as api:
        before = take(api)
        try:
            yield
        finally:
            restore(api, before)
