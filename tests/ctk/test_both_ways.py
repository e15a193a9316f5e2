"""The Chaos Toolkit experiments in ``experiments/`` (every provider type, tolerance kind,
hypothesis strategy and rollback strategy; configuration and secrets from the environment;
pauses; chaostoolkit-toxiproxy's actions and probes) run twice: by the ``chaos`` command,
and by pytest with ``chaos.run_file``. Each run has a real shop of its own, and the
journals agree on status, deviation, every steady-state probe and every activity.

``chaos run`` talks to an embedded proxy over HTTP as to a real Toxiproxy; under pytest the
experiments are told a Toxiproxy URL where nothing listens, and run against the session's
proxy all the same, since ``run_file`` serves chaostoolkit-toxiproxy from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.proxy.backends import free_port
from pytest_chaos.proxy.client import Toxiproxy
from pytest_chaos.proxy.snapshot import restore, take

from ..servers import CODE_ROOT, ApiServer, isolate_chaos_env
from . import shop

EXPERIMENTS = sorted((Path(__file__).parent / "experiments").glob("*.*"))
#: The chaos command of this Python's environment (installed with the dev extras).
CHAOS = shutil.which("chaos", path=str(Path(sys.executable).parent)) or "chaos"
#: Where nothing listens: under pytest, Toxiproxy must come from the session.
NO_TOXIPROXY = "http://127.0.0.1:9"
#: How pytest ends each experiment; ``chaos run`` exits 0 for "passed" and "not steady"
#: (a hypothesis not met before the method, with every probe run, ends "completed").
OUTCOMES = {
    "after-only.yaml": "passed",
    "before-only.json": "passed",
    "breaks-never.json": "failed",
    "breaks.yaml": "failed",
    "during-only.yaml": "passed",
    "healthy.json": "passed",
    "not-steady.json": "error",
    "secrets.json": "passed",
    "toxiproxy.json": "passed",
}


def summary(journal: dict[str, Any]) -> dict[str, Any]:
    """What the two runs of an experiment must agree on."""

    def state(found: dict[str, Any] | None) -> Any:
        if found is None:
            return None
        probes = [
            (run["activity"]["name"], run["status"], run["tolerance_met"])
            for run in found["probes"]
        ]
        return found["steady_state_met"], probes

    states = journal["steady_states"]
    return {
        "status": journal["status"],
        "deviated": journal["deviated"],
        "before": state(states["before"]),
        "after": state(states["after"]),
        "checked during": bool(states["during"]),
        "held at every check during": all(state["steady_state_met"] for state in states["during"]),
        "run": [
            (run["activity"]["type"], run["activity"]["name"], run["status"])
            for run in journal["run"]
        ],
        "rollbacks": [(run["activity"]["name"], run["status"]) for run in journal["rollbacks"]],
    }


def chaos_run(path: Path, folder: Path, toxiproxy_url: str) -> tuple[int, dict[str, Any]]:
    """``chaos run`` of one experiment against a shop of its own."""
    journal = folder / f"{path.name}.journal.json"
    with shop.running() as running:
        env = {
            **os.environ,
            **running.environment(),
            "CTK_PROXY_PORT": str(free_port()),
            "CTK_TOXIPROXY_URL": toxiproxy_url,
            "PYTHONPATH": str(CODE_ROOT),
        }
        done = subprocess.run(
            [
                CHAOS,
                "--no-version-check",
                "--no-log-file",
                "--settings",
                str(folder / "no-settings.yaml"),
                "run",
                "--journal-path",
                str(journal),
                str(path),
            ],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert journal.exists(), done.stderr
    return done.returncode, json.loads(journal.read_text())


INNER_TESTS = """
import pytest
from pathlib import Path

from pytest_chaos.proxy.backends import free_port
from tests.ctk import shop

EXPERIMENTS = sorted(Path({folder!r}).glob("*.*"))


@pytest.fixture
def a_shop(monkeypatch):
    with shop.running() as running:
        for key, value in running.environment().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CTK_PROXY_PORT", str(free_port()))
        monkeypatch.setenv("CTK_TOXIPROXY_URL", {no_toxiproxy!r})
        yield running


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.name)
def test_experiment(chaos, a_shop, path):
    chaos.run_file(path)
"""


@dataclass
class Runs:
    """Every experiment run both ways: ``chaos run``'s exit code and journal, and the
    pytest session's outcome and journal, by file name."""

    by_chaos: dict[str, tuple[int, dict[str, Any]]]
    outcomes: dict[str, str]
    by_pytest: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, embedded_server: ApiServer) -> Iterator[Runs]:
    """The pytest session runs while the ``chaos`` command runs the experiments a few at
    a time (each is mostly the command's start-up); the embedded proxy is put back as it
    was afterwards."""
    folder = tmp_path_factory.mktemp("both-ways")
    (folder / "test_experiments.py").write_text(
        INNER_TESTS.format(folder=str(EXPERIMENTS[0].parent), no_toxiproxy=NO_TOXIPROXY)
    )
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-rA"]
    argv += ["--chaos-journal-dir", "journals", "test_experiments.py"]
    log = folder / "pytest.log"  # a file: a pipe nobody reads meanwhile would fill and block
    with pytest.MonkeyPatch.context() as monkeypatch, log.open("w") as output:
        isolate_chaos_env(monkeypatch)
        session = subprocess.Popen(argv, cwd=folder, stdout=output, stderr=subprocess.STDOUT)
    try:
        with Toxiproxy(embedded_server.url) as api:
            before = take(api)
            try:
                with ThreadPoolExecutor(max_workers=3) as pool:
                    done = pool.map(
                        lambda p: chaos_run(p, folder, embedded_server.url), EXPERIMENTS
                    )
                    by_chaos = dict(zip((path.name for path in EXPERIMENTS), done, strict=True))
            finally:
                restore(api, before)
        session.wait(timeout=300)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    outcomes = {}
    for line in log.read_text().splitlines():
        for word in ("PASSED", "FAILED", "ERROR"):
            if line.startswith(word + " ") and "[" in line:
                outcomes[line.split("[", 1)[1].split("]", 1)[0]] = word.lower()
    by_pytest = {}
    for path in (folder / "journals").glob("*.json"):
        journal = json.loads(path.read_text())
        by_pytest[Path(journal["pytest_chaos"]["source"]).name] = journal
    yield Runs(by_chaos, outcomes, by_pytest)


def test_chaos_run_and_pytest_agree_on_every_experiment(runs: Runs) -> None:
    """One test for the whole suite, so that pytest-xdist runs it once: the runs are most
    of its cost."""
    disagreements = []
    for path in EXPERIMENTS:
        exit_code, chaos_journal = runs.by_chaos[path.name]
        expected = (OUTCOMES[path.name], 0 if OUTCOMES[path.name] in ("passed", "error") else 1)
        seen = (runs.outcomes.get(path.name), exit_code)
        if seen != expected:
            disagreements.append(f"{path.name}: pytest, chaos run gave {seen}, not {expected}")
        ours, theirs = summary(runs.by_pytest[path.name]), summary(chaos_journal)
        for key in theirs:
            if ours[key] != theirs[key]:
                disagreements.append(f"{path.name}: {key}: pytest {ours[key]} != {theirs[key]}")
    assert not disagreements, "\n".join(disagreements)
    # what docs/experiments.md says of Chaos Toolkit's verdict: the shop is down for 1.5 s
    # of the method, a check (every second) sees it, and the journal is not deviated
    _, journal = runs.by_chaos["during-only.yaml"]
    assert not all(state["steady_state_met"] for state in journal["steady_states"]["during"])
    assert (journal["status"], journal["deviated"]) == ("completed", False)


def test_the_experiments_cover_what_they_claim() -> None:
    """Every provider type, tolerance kind, hypothesis strategy and rollback strategy of
    Chaos Toolkit appears in the suite, in JSON and in YAML files."""
    import yaml

    documents = [yaml.safe_load(path.read_text()) for path in EXPERIMENTS]
    providers, tolerances, strategies, rollbacks = set(), set(), set(), set()
    for document in documents:
        runtime = document.get("runtime") or {}
        strategies.add((runtime.get("hypothesis") or {}).get("strategy", "default"))
        rollbacks.add((runtime.get("rollbacks") or {}).get("strategy", "default"))
        hypothesis = document.get("steady-state-hypothesis") or {}
        activities = [*hypothesis.get("probes", []), *document["method"]]
        activities += document.get("rollbacks", [])
        providers |= {activity["provider"]["type"] for activity in activities}
        for probe in hypothesis.get("probes", []):
            tolerance = probe["tolerance"]
            if isinstance(tolerance, dict):
                tolerances.add(tolerance["type"])
            elif isinstance(tolerance, list):
                tolerances.add("range" if len(tolerance) == 2 else "list")
            else:
                tolerances.add(type(tolerance).__name__)
    assert providers == {"python", "http", "process"}
    assert tolerances == {"bool", "int", "str", "range", "list", "regex", "jsonpath", "probe"}
    assert strategies == {
        "default",
        "before-method-only",
        "after-method-only",
        "during-method-only",
        "continuously",
    }
    assert rollbacks == {"default", "always", "never", "deviated"}
    assert {path.suffix for path in EXPERIMENTS} == {".json", ".yaml"}
    assert any(document.get("secrets") for document in documents)
    modules = {
        activity["provider"].get("module")
        for document in documents
        for activity in [*document["method"], *document.get("rollbacks", [])]
    }
    assert {
        "chaostoxi.proxy.actions",
        "chaostoxi.proxy.probes",
        "chaostoxi.toxic.actions",
    } <= modules
