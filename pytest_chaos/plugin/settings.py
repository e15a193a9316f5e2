"""One validated settings object: command line, then environment, then ini, then default.

Each option is declared once (its flag, ini key, environment variable and parser) and
registered with pytest from that declaration, so the three spellings cannot drift apart.
Bad values stop the session at start-up with a message naming the value and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, final

import pytest

from pytest_chaos.core.redaction import check as check_redact_pattern
from pytest_chaos.core.seeding import fresh_seed
from pytest_chaos.explore import settings as explore_settings
from pytest_chaos.explore.settings import ExploreSettings
from pytest_chaos.proxy.target import ToxiproxyTarget

T = TypeVar("T")
CACHE_KEY_SEED = "chaos/seed"


@final
@dataclass(frozen=True)
class Settings:
    seed: int
    seed_origin: str  # "random", "given" or "last"
    toxiproxy: ToxiproxyTarget
    dry_run: bool
    journal_dir: Path | None = None
    report_dir: Path | None = None
    min_score: float | None = None
    max_deviated: int | None = None
    experiment_files: tuple[str, ...] = ()
    redact: tuple[str, ...] = ()
    explore: ExploreSettings = field(default_factory=ExploreSettings)


@final
@dataclass(frozen=True)
class Option:
    """One setting in its three spellings."""

    name: str
    help: str
    repeatable: bool = False
    flag: bool = False

    @property
    def cli(self) -> str:
        return "--chaos-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "chaos_" + self.name

    @property
    def env(self) -> str:
        return "PYTEST_CHAOS_" + self.name.upper()

    @property
    def dest(self) -> str:
        return "chaos_" + self.name


SEED = Option(
    "seed",
    "session seed for every random choice: an integer, or 'last' to replay "
    "the previous run (default: a fresh random seed, printed in the header)",
)
TOXIPROXY = Option(
    "toxiproxy",
    "where proxies live: 'embedded' (default), a Toxiproxy API URL, "
    "'binary[=PATH]', 'container[=IMAGE]', or NAME=URL (repeat for several hosts)",
    repeatable=True,
)
DRY_RUN = Option("dry_run", "rehearse: probes run, faults are recorded but not applied", flag=True)
JOURNAL_DIR = Option(
    "journal_dir",
    "write each experiment's journal (JSON, Chaos Toolkit's format) into this folder",
)
REPORT = Option(
    "report",
    "write the session's evidence into this folder: summary.json, every experiment's "
    "journal, and a self-contained report.html",
)
MIN_SCORE = Option(
    "min_score",
    "gate: fail the session when the resilience score (0-100) is below this; deviated "
    "experiments then fail the run only through the gates",
)
MAX_DEVIATED = Option(
    "max_deviated",
    "gate: fail the session when more than this many experiments deviated or halted",
)
EXPERIMENT_FILES = Option(
    "experiment_files",
    "collect Chaos Toolkit experiment files (.json, .yaml, .yml) matching these globs as "
    "tests, each run by chaos.run_file (a glob without '/' matches file names, one with "
    "'/' paths from the rootdir; repeat for several)",
    repeatable=True,
)
REDACT = Option(
    "redact",
    "redact the values of names matching this regular expression too (besides token, key, "
    "secret, password, auth) in journals, reports and the terminal; repeatable",
    repeatable=True,
)
EXPLORE = Option(
    "explore",
    "explore every selected test: a run without faults records what it uses, then runs "
    "under each fault of the catalogue on each of those, then pruned combinations",
    flag=True,
)
EXPLORE_BUDGET = Option(
    "explore_budget",
    "how much to explore: a number of fault runs (200) or a duration (90s, 10m, 1.5h); "
    "the runs are ordered by the seed, so a budget cuts the same ones every time",
)
EXPLORE_MIN = Option(
    "explore_min",
    "gate: fail the session when less than this share (0-100) of the explored runs held "
    "or did what was expected; broken runs then fail the run only through this gate",
)
EXPLORE_TIMEOUT = Option(
    "explore_timeout",
    f"seconds an explored test may run before it counts as hung (default "
    f"{explore_settings.DEFAULT_TIMEOUT_S:g})",
)
EXPLORE_LATENCY = Option(
    "explore_latency",
    f"milliseconds the slow faults add: latency, slow-close, slow-head (default "
    f"{explore_settings.DEFAULT_LATENCY_MS})",
)
EXPLORE_DEPTH = Option(
    "explore_depth",
    f"the most faults one run combines, 1 to {explore_settings.MAX_DEPTH} (default "
    f"{explore_settings.DEFAULT_DEPTH})",
)
EXPLORE_EXHAUSTIVE = Option(
    "explore_exhaustive",
    "explore without pruning: every fault on every dependency the baseline made, every "
    "combination (to compare with the pruned exploration)",
    flag=True,
)
OPTIONS = (
    SEED,
    TOXIPROXY,
    DRY_RUN,
    JOURNAL_DIR,
    REPORT,
    MIN_SCORE,
    MAX_DEVIATED,
    EXPERIMENT_FILES,
    REDACT,
    EXPLORE,
    EXPLORE_BUDGET,
    EXPLORE_MIN,
    EXPLORE_TIMEOUT,
    EXPLORE_LATENCY,
    EXPLORE_DEPTH,
    EXPLORE_EXHAUSTIVE,
)


def register(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "resilience testing (pytest-chaos)")
    for option in OPTIONS:
        if option.flag:
            group.addoption(
                option.cli, action="store_true", default=None, dest=option.dest, help=option.help
            )
        else:
            group.addoption(
                option.cli,
                action="append" if option.repeatable else "store",
                default=None,
                dest=option.dest,
                help=option.help,
            )
        parser.addini(option.ini, option.help, default=None)


def raw_values(config: pytest.Config, option: Option) -> tuple[str, list[str]] | None:
    """The winning spelling of ``option`` and its values, or None for the default."""
    given = config.getoption(option.dest)
    if given is not None:
        values = given if isinstance(given, list) else [given]
        return option.cli, [str(v) for v in values]
    env = os.environ.get(option.env)
    if env is not None and env.strip():
        return option.env, _split(env) if option.repeatable else [env.strip()]
    ini: Any = config.getini(option.ini)
    if ini is not None and str(ini).strip():
        return option.ini, _split(str(ini)) if option.repeatable else [str(ini).strip()]
    return None


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text) if part]


def load(config: pytest.Config) -> Settings:
    """Read and validate every setting; raise ``pytest.UsageError`` naming a bad value."""
    seed, origin = _seed(config)
    return Settings(
        seed=seed,
        seed_origin=origin,
        toxiproxy=_toxiproxy(config),
        dry_run=flag(config, DRY_RUN),
        journal_dir=_folder(config, JOURNAL_DIR),
        report_dir=_folder(config, REPORT),
        min_score=_min_score(config),
        max_deviated=_max_deviated(config),
        experiment_files=tuple((raw_values(config, EXPERIMENT_FILES) or ("", []))[1]),
        redact=_redact(config),
        explore=_explore(config),
    )


def _redact(config: pytest.Config) -> tuple[str, ...]:
    found = raw_values(config, REDACT)
    if found is None:
        return ()
    source, patterns = found
    for pattern in patterns:
        problem = check_redact_pattern(pattern)
        if problem is not None:
            raise pytest.UsageError(
                f"{source}={pattern!r}: {problem}; give a regular expression for the names "
                "of secret values, such as 'session|cookie'"
            )
    return tuple(patterns)


def _explore(config: pytest.Config) -> ExploreSettings:
    default = ExploreSettings()
    return ExploreSettings(
        enabled=flag(config, EXPLORE),
        budget=_parsed(config, EXPLORE_BUDGET, explore_settings.budget, default.budget),
        min_held=_parsed(config, EXPLORE_MIN, explore_settings.percent, None),
        timeout_s=_parsed(config, EXPLORE_TIMEOUT, explore_settings.seconds, default.timeout_s),
        latency_ms=_parsed(
            config,
            EXPLORE_LATENCY,
            lambda value: explore_settings.whole(value, 1, 600_000),
            default.latency_ms,
        ),
        depth=_parsed(
            config,
            EXPLORE_DEPTH,
            lambda value: explore_settings.whole(value, 1, explore_settings.MAX_DEPTH),
            default.depth,
        ),
        exhaustive=flag(config, EXPLORE_EXHAUSTIVE),
    )


def _parsed(config: pytest.Config, option: Option, parse: Callable[[str], T], default: T) -> T:
    """``option``'s value read by ``parse`` (whose ValueError becomes a usage error naming
    the spelling used), or ``default``."""
    found = raw_values(config, option)
    if found is None:
        return default
    source, (value,) = found
    try:
        return parse(value)
    except ValueError as error:
        raise pytest.UsageError(f"{source}={error}") from None


def _min_score(config: pytest.Config) -> float | None:
    found = raw_values(config, MIN_SCORE)
    if found is None:
        return None
    source, (value,) = found
    try:
        score = float(value)
    except ValueError:
        score = float("nan")
    if not 0 <= score <= 100:
        raise pytest.UsageError(f"{source}={value!r}: expected a number from 0 to 100")
    return score


def _max_deviated(config: pytest.Config) -> int | None:
    found = raw_values(config, MAX_DEVIATED)
    if found is None:
        return None
    source, (value,) = found
    if not value.isdigit():
        raise pytest.UsageError(f"{source}={value!r}: expected a whole number, 0 or more")
    return int(value)


def _folder(config: pytest.Config, option: Option) -> Path | None:
    found = raw_values(config, option)
    if found is None:
        return None
    source, (value,) = found
    folder = Path(config.invocation_params.dir, value)
    if folder.exists() and not folder.is_dir():
        raise pytest.UsageError(f"{source}={value!r}: exists and is not a folder")
    return folder


def _seed(config: pytest.Config) -> tuple[int, str]:
    found = raw_values(config, SEED)
    if found is None:
        return fresh_seed(), "random"
    source, (value,) = found
    if value == "last":
        cache = getattr(config, "cache", None)
        cached = cache.get(CACHE_KEY_SEED, None) if cache is not None else None
        if not isinstance(cached, int):
            raise pytest.UsageError(
                f"{source}=last: no previous chaos seed in the pytest cache; "
                "run once without it, or give an integer seed"
            )
        return cached, "last"
    if not value.isdigit() or int(value) >= 2**63:
        raise pytest.UsageError(
            f"{source}={value!r}: expected a non-negative integer below 2**63, or 'last'"
        )
    return int(value), "given"


def flag(config: pytest.Config, option: Option) -> bool:
    """Whether a flag option is on; a usage error for a value that is not a boolean."""
    found = raw_values(config, option)
    if found is None:
        return False
    source, (value,) = found
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise pytest.UsageError(
        f"{source}={value!r}: expected one of 1, true, yes, on, 0, false, no, off"
    )


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


def _toxiproxy(config: pytest.Config) -> ToxiproxyTarget:
    found = raw_values(config, TOXIPROXY)
    if found is None:
        return ToxiproxyTarget("embedded")
    source, values = found
    parsed = [_target(source, value) for value in values]
    if len(parsed) == 1 and parsed[0].kind != "hosts":
        return parsed[0]
    if any(target.kind != "hosts" for target in parsed):
        raise pytest.UsageError(
            f"{source}: several values are only allowed as NAME=URL pairs, got {values!r}"
        )
    hosts: dict[str, str] = {}
    for target in parsed:
        for name, url in target.hosts.items():
            if name in hosts:
                raise pytest.UsageError(f"{source}: host name {name!r} is given twice")
            hosts[name] = url
    return ToxiproxyTarget("hosts", hosts=hosts)


def _target(source: str, value: str) -> ToxiproxyTarget:
    allowed = (
        "expected 'embedded', a URL such as http://127.0.0.1:8474, 'binary[=PATH]', "
        "'container[=IMAGE]' or NAME=URL"
    )
    head, sep, rest = value.partition("=")
    if value == "embedded":
        return ToxiproxyTarget("embedded")
    if _is_url(value):
        return ToxiproxyTarget("url", value.rstrip("/"))
    if head in ("binary", "container"):
        if sep and not rest:
            raise pytest.UsageError(f"{source}={value!r}: {head}= needs a value after '='")
        return ToxiproxyTarget(head, rest)
    if sep and _NAME.match(head) and _is_url(rest):
        return ToxiproxyTarget("hosts", hosts={head: rest.rstrip("/")})
    raise pytest.UsageError(f"{source}={value!r}: {allowed}")


def _is_url(value: str) -> bool:
    return re.match(r"https?://[^/\s]+", value) is not None
