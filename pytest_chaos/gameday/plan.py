"""A game-day plan: a TOML file naming the suite, its targets, repetitions, halt conditions,
the people who own it and when it runs, read into frozen dataclasses.

Every key is checked when the plan is read, so a game day never stops half way for a typo;
an error names the table, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, final

from pytest_chaos.core.errors import ChaosError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

T = TypeVar("T")

DEFAULT_OUTPUT = "gameday-reports"
DEFAULT_PYTHON = "3.11"
DEFAULT_INSTALL = "python -m pip install pytest-chaos"
MAX_REPETITIONS = 1000


class PlanError(ChaosError, ValueError):
    """A plan that cannot be read or has a bad value; the message names file, key and value."""


@final
@dataclass(frozen=True)
class Suite:
    """What runs: pytest's arguments and marker expression, in ``directory``."""

    directory: Path
    args: tuple[str, ...] = ()
    markers: str | None = None


@final
@dataclass(frozen=True)
class Targets:
    """The infrastructure the faults hit: a Toxiproxy API (None: the embedded proxy) and the
    container engine the tests reach through ``DOCKER_HOST`` (None: the environment's)."""

    toxiproxy: str | None = None
    docker_host: str | None = None


@final
@dataclass(frozen=True)
class HaltProbe:
    """An HTTP check polled every ``every_s`` while a repetition runs; an answer other than
    ``status`` (or none within ``timeout_s``) stops the game day."""

    url: str
    status: int = 200
    every_s: float = 1.0
    timeout_s: float = 2.0


@final
@dataclass(frozen=True)
class Halt:
    """When the game day stops early: a repetition scoring below ``min_score``, this many
    deviated experiments in total, a game day longer than ``max_duration_s``, a failing
    probe. A stopped repetition gets SIGINT, and ``grace_s`` to roll back before SIGTERM."""

    min_score: float | None = None
    max_deviated: int | None = None
    max_duration_s: float | None = None
    grace_s: float = 10.0
    probes: tuple[HaltProbe, ...] = ()


@final
@dataclass(frozen=True)
class Schedule:
    """When the game day runs unattended (a cron expression, UTC), and how CI prepares it."""

    cron: str | None = None
    python: str = DEFAULT_PYTHON
    install: str = DEFAULT_INSTALL


@final
@dataclass(frozen=True)
class Plan:
    """A whole game-day plan; paths are absolute, resolved against the plan's folder."""

    path: Path
    name: str
    suite: Suite
    owners: tuple[str, ...] = ()
    runbooks: tuple[str, ...] = ()
    description: str | None = None
    repetitions: int = 1
    seed: int | None = None
    output: Path = field(default=Path(DEFAULT_OUTPUT))
    targets: Targets = field(default_factory=Targets)
    halt: Halt = field(default_factory=Halt)
    schedule: Schedule = field(default_factory=Schedule)


_TABLES = ("gameday", "suite", "targets", "halt", "schedule")
_KEYS = {
    "gameday": ("name", "description", "owners", "runbooks", "repetitions", "seed", "output"),
    "suite": ("directory", "args", "markers"),
    "targets": ("toxiproxy", "docker_host"),
    "halt": ("min_score", "max_deviated", "max_duration_s", "grace_s", "probe"),
    "probe": ("url", "status", "every_s", "timeout_s"),
    "schedule": ("cron", "python", "install"),
}
_URL = re.compile(r"https?://[^/\s]+\S*\Z")
_DOCKER_HOST = re.compile(r"(unix|tcp|ssh|npipe)://\S+\Z")


def load(path: str | Path) -> Plan:
    """Read and check the plan at ``path``; raise PlanError naming what is wrong."""
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"{path}: cannot read the plan: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise PlanError(f"{path}: not valid TOML: {error}") from None
    return parse(data, path)


def parse(data: Mapping[str, Any], path: Path) -> Plan:
    """The plan in ``data`` (TOML read from ``path``, which relative paths start from)."""
    where = str(path)
    _only(where, "the plan", data, _TABLES, "tables")
    tables = {name: _table(where, name, data.get(name, {})) for name in _TABLES}
    if "gameday" not in data:
        raise PlanError(f"{where}: no [gameday] table; a plan needs at least [gameday] name")
    if "suite" not in data:
        raise PlanError(f"{where}: no [suite] table; say what to run with [suite] args")
    for name, table in tables.items():
        _only(where, f"[{name}]", table, _KEYS[name], "keys")
    read = _Reader(where)
    game, suite, targets, halt, schedule = (tables[name] for name in _TABLES)
    base = path.parent
    directory = (base / _or(read.text("suite", suite, "directory"), ".")).resolve()
    if not directory.is_dir():
        raise PlanError(
            f"{where}: [suite] directory = {suite.get('directory', '.')!r}: {directory} is not "
            "a folder; give a folder relative to the plan"
        )
    return Plan(
        path=path,
        name=read.required_text("gameday", game, "name"),
        description=read.text("gameday", game, "description"),
        owners=read.texts("gameday", game, "owners"),
        runbooks=read.texts("gameday", game, "runbooks", check=_is_url, allowed="URLs"),
        repetitions=_or(read.integer("gameday", game, "repetitions", 1, MAX_REPETITIONS), 1),
        seed=read.integer("gameday", game, "seed", 0, 2**63 - 1),
        output=(base / _or(read.text("gameday", game, "output"), DEFAULT_OUTPUT)).resolve(),
        suite=Suite(
            directory=directory,
            args=read.texts("suite", suite, "args"),
            markers=read.text("suite", suite, "markers"),
        ),
        targets=Targets(
            toxiproxy=read.text(
                "targets",
                targets,
                "toxiproxy",
                check=_is_url,
                allowed="a Toxiproxy API URL such as http://127.0.0.1:8474",
            ),
            docker_host=read.text(
                "targets",
                targets,
                "docker_host",
                check=lambda value: _DOCKER_HOST.match(value) is not None,
                allowed="a DOCKER_HOST such as unix:///run/podman/podman.sock or tcp://host:2375",
            ),
        ),
        halt=Halt(
            min_score=read.number("halt", halt, "min_score", 0, 100),
            max_deviated=read.integer("halt", halt, "max_deviated", 1, 10**6),
            max_duration_s=read.number("halt", halt, "max_duration_s", 0, math.inf, open_low=True),
            grace_s=_or(read.number("halt", halt, "grace_s", 0, 3600), 10.0),
            probes=_probes(where, read, halt.get("probe", [])),
        ),
        schedule=Schedule(
            cron=_cron(where, read.text("schedule", schedule, "cron")),
            python=_or(read.text("schedule", schedule, "python"), DEFAULT_PYTHON),
            install=_or(read.text("schedule", schedule, "install"), DEFAULT_INSTALL),
        ),
    )


def _cron(where: str, expression: str | None) -> str | None:
    if expression is None:
        return None
    from pytest_chaos.gameday.cron import ScheduleError, normalize

    try:
        return normalize(expression)
    except ScheduleError as error:
        raise PlanError(f"{where}: [schedule] cron = {expression!r}: {error}") from None


def _probes(where: str, read: _Reader, probes: Any) -> tuple[HaltProbe, ...]:
    if isinstance(probes, Mapping):
        probes = [probes]
    if not isinstance(probes, list):
        raise PlanError(
            f"{where}: [halt] probe = {probes!r}: use [[halt.probe]] tables, one per probe"
        )
    found = []
    for number, probe in enumerate(probes, 1):
        table = f"[[halt.probe]] #{number}"
        probe = _table(where, table, probe)
        _only(where, table, probe, _KEYS["probe"], "keys")
        found.append(
            HaltProbe(
                url=read.required_text(
                    table, probe, "url", check=_is_url, allowed="an http:// or https:// URL"
                ),
                status=_or(read.integer(table, probe, "status", 100, 599), 200),
                every_s=_or(read.number(table, probe, "every_s", 0, 3600, open_low=True), 1.0),
                timeout_s=_or(read.number(table, probe, "timeout_s", 0, 600, open_low=True), 2.0),
            )
        )
    return tuple(found)


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _is_url(value: str) -> bool:
    return _URL.match(value) is not None


def _table(where: str, name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        label = name if name.startswith("[") else f"[{name}]"
        raise PlanError(f"{where}: {label} is {value!r}; it must be a table of keys")
    return value


def _only(
    where: str, label: str, table: Mapping[str, Any], allowed: tuple[str, ...], kind: str
) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise PlanError(
            f"{where}: {label} has unknown key {unknown[0]!r}; allowed {kind}: {', '.join(allowed)}"
        )


class _Reader:
    """Reads typed values from a table, raising PlanError that names table, key and value."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, table: str, key: str, value: Any, allowed: str) -> PlanError:
        label = table if table.startswith("[") else f"[{table}]"
        return PlanError(f"{self.where}: {label} {key} = {value!r}: use {allowed}")

    def text(
        self,
        table: str,
        values: Mapping[str, Any],
        key: str,
        *,
        check: Callable[[str], bool] | None = None,
        allowed: str = "a non-empty string",
    ) -> str | None:
        if key not in values:
            return None
        value = values[key]
        if not isinstance(value, str) or not value.strip() or (check and not check(value)):
            raise self.fail(table, key, value, allowed)
        return value

    def required_text(
        self,
        table: str,
        values: Mapping[str, Any],
        key: str,
        *,
        check: Callable[[str], bool] | None = None,
        allowed: str = "a non-empty string",
    ) -> str:
        found = self.text(table, values, key, check=check, allowed=allowed)
        if found is None:
            label = table if table.startswith("[") else f"[{table}]"
            raise PlanError(f"{self.where}: {label} needs {key} ({allowed})")
        return found

    def texts(
        self,
        table: str,
        values: Mapping[str, Any],
        key: str,
        *,
        check: Callable[[str], bool] | None = None,
        allowed: str = "strings",
    ) -> tuple[str, ...]:
        value = values.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(item, str) and item.strip() and (check is None or check(item))
            for item in value
        ):
            raise self.fail(table, key, value, f"a list of {allowed}")
        return tuple(value)

    def integer(
        self,
        table: str,
        values: Mapping[str, Any],
        key: str,
        low: int,
        high: int,
    ) -> int | None:
        if key not in values:
            return None
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(table, key, value, f"an integer from {low} to {high}")
        return value

    def number(
        self,
        table: str,
        values: Mapping[str, Any],
        key: str,
        low: float,
        high: float,
        *,
        open_low: bool = False,
    ) -> float | None:
        if key not in values:
            return None
        value = values[key]
        low_ok = isinstance(value, (int, float)) and (value > low if open_low else value >= low)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low_ok
            or value > high
        ):
            bound = f"more than {low:g}" if open_low else f"from {low:g}"
            upper = "" if math.isinf(high) else f" to {high:g}"
            raise self.fail(table, key, value, f"a number {bound}{upper}")
        return float(value)
