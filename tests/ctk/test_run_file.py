"""Chaos Toolkit experiment files under pytest, as their users meet them: collected by
``--chaos-experiment-files`` or run by ``chaos.run_file``, with fixtures feeding their
configuration, the session's seed, gates, journals, dry run, Ctrl-C, and nothing left
behind (the environment chaostoolkit-toxiproxy writes to, the proxies it creates).

Each inner session runs in a process of its own: chaostoolkit-lib, once imported, changes
how later in-process pytest runs find their plugins."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.core.seeding import TestSeeds

from ..servers import isolate_chaos_env

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)


def experiment(title: str, probes: list[Any], method: list[Any], **more: Any) -> str:
    document = {
        "version": "1.0.0",
        "title": title,
        "description": title,
        "tags": ["ctk"],
        "configuration": {"shop_url": {"type": "env", "key": "SHOP_URL", "default": "unset"}},
        "steady-state-hypothesis": {"title": f"{title}: hypothesis", "probes": probes},
        "method": method,
        **more,
    }
    return json.dumps(document, indent=2)


def python(name: str, func: str, kind: str = "action", **arguments: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": kind,
        "name": name,
        "provider": {"type": "python", "module": "steps", "func": func, "arguments": arguments},
    }
    return activity


def health(tolerance: Any = 200) -> dict[str, Any]:
    return {
        "type": "probe",
        "name": "health",
        "tolerance": tolerance,
        "provider": {"type": "http", "url": "${shop_url}/health", "timeout": 3},
    }


STEPS = """
import os, random, signal


def draw():
    return random.random()


def interrupt():
    os.kill(os.getpid(), signal.SIGINT)


def nothing():
    return None
"""

CONFTEST = """
import pytest
from tests.ctk import shop


@pytest.fixture
def running_shop():
    with shop.running() as running:
        yield running


@pytest.fixture
def chaos_experiment_options(running_shop):
    # the shop's URL from a fixture, as `chaos run --var shop_url=...` would give it
    return {"configuration": {"shop_url": running_shop.url}}
"""


def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(steps=STEPS)
    pytester.makeconftest(CONFTEST)
    return pytester


def journals(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in folder.glob("*.json"):
        journal = json.loads(path.read_text())
        found[journal["experiment"]["title"]] = journal
    return found


def test_collected_experiment_files_are_tests_with_fixtures_gates_and_journals(
    pytester: pytest.Pytester,
) -> None:
    """Files matching the globs are collected (one test each, named by the title), get
    their configuration from fixtures, fail as their journals say, and count in the gates:
    with one deviation tolerated the session passes."""
    lab(pytester)
    experiments = pytester.mkdir("experiments")
    (experiments / "holds.json").write_text(
        experiment("the shop holds", [health()], [python("draw", "draw")])
    )
    (experiments / "breaks.yaml").write_text(
        experiment(
            "the shop breaks",
            [health()],
            [
                {
                    "type": "action",
                    "name": "break",
                    "provider": {"type": "http", "url": "${shop_url}/break", "method": "POST"},
                }
            ],
        )
    )
    (experiments / "notes.yml").write_text("not: an experiment")  # matched by no glob
    result = pytester.runpytest_subprocess(
        "--chaos-experiment-files",
        "experiments/*.json",
        "--chaos-experiment-files",
        "breaks.yaml",
        "--chaos-journal-dir",
        "journals",
        "--chaos-max-deviated",
        "1",
        "-rA",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*PASSED experiments/holds.json::the shop holds*",
            "*FAILED experiments/breaks.yaml::the shop breaks*",
        ]
    )
    result.stdout.fnmatch_lines(["*chaos experiment 'the shop breaks' (breaks.yaml) deviated*"])
    assert result.ret == pytest.ExitCode.OK, "one deviation is within --chaos-max-deviated 1"
    found = journals(pytester.path / "journals")
    assert (found["the shop breaks"]["status"], found["the shop breaks"]["deviated"]) == (
        "completed",
        True,
    )
    holds = found["the shop holds"]
    assert holds["pytest_chaos"]["nodeid"] == "experiments/holds.json::the shop holds"
    assert holds["steady_states"]["before"]["probes"][0]["output"]["status"] == 200


RUN_FILE_TESTS = """
import json, os, random
from pathlib import Path

import pytest
from pytest_chaos.ctk.files import InvalidExperimentFile


def test_seeded(chaos, running_shop):
    state = random.getstate()
    journal = chaos.run_file("seeded.json", configuration={"shop_url": running_shop.url})
    assert random.getstate() == state  # Python's random is put back
    print("DRAW", journal["run"][0]["output"])


def test_bad_arguments_are_refused_before_anything_runs(chaos):
    with pytest.raises(ValueError, match="strategy='often': use one of default"):
        chaos.run_file("seeded.json", strategy="often")
    with pytest.raises(ValueError, match="rollback_strategy='sometimes'"):
        chaos.run_file("seeded.json", rollback_strategy="sometimes")
    with pytest.raises(InvalidExperimentFile, match="give a Chaos Toolkit experiment file"):
        chaos.run_file("steps.py")
    with pytest.raises(InvalidExperimentFile, match="invalid.json: .*experiment requires a method"):
        chaos.run_file("invalid.json")
    with pytest.raises(InvalidExperimentFile, match="often.json: runtime: strategy='often'"):
        chaos.run_file("often.json")
    assert chaos.journals == []


def test_toxiproxy_and_the_environment_are_put_back(chaos, toxiproxy, running_shop):
    journal = chaos.run_file("proxy.json", configuration={"shop_url": running_shop.url})
    assert [run["status"] for run in journal["run"]] == ["succeeded", "succeeded"]
    assert "ctk-left_PORT" not in os.environ  # chaostoolkit-toxiproxy wrote it during the run
    assert "ctk-left" not in toxiproxy.proxies()  # no rollback deleted it: the snapshot did
    print("TOXIPROXY_URL", journal["experiment"]["configuration"]["toxiproxy_url"])


def test_dry_run_plays_no_action(chaos, running_shop):
    journal = chaos.run_file("breaks.json", configuration={"shop_url": running_shop.url})
    assert journal["experiment"]["dry"] == "actions"
    assert not running_shop.broken


def test_interrupted(chaos):
    chaos.run_file("interrupt.json")
"""


def test_run_file_seeds_refuses_restores_and_dry_runs(pytester: pytest.Pytester) -> None:
    lab(pytester)
    pytester.makepyfile(test_files=RUN_FILE_TESTS)
    (pytester.path / "seeded.json").write_text(
        experiment("seeded", [health()], [python("draw", "draw")])
    )
    (pytester.path / "invalid.json").write_text(
        json.dumps({"title": "no method", "description": "x"})
    )
    (pytester.path / "often.json").write_text(
        experiment("often", [], [], runtime={"hypothesis": {"strategy": "often"}})
    )
    create = python(
        "create proxy",
        "create_proxy",
        proxy_name="ctk-left",
        upstream_host="127.0.0.1",
        upstream_port=9,
        listen_host="127.0.0.1",
    )
    create["provider"]["module"] = "chaostoxi.proxy.actions"
    exists = python("proxy exists", "proxy_exist", kind="probe", proxy_name="ctk-left")
    exists["provider"]["module"] = "chaostoxi.proxy.probes"
    (pytester.path / "proxy.json").write_text(
        experiment(
            "a proxy left behind",
            [],
            [create, exists],
            runtime={"rollbacks": {"strategy": "never"}},
        )
    )
    breaks = {
        "type": "action",
        "name": "break",
        "provider": {"type": "http", "url": "${shop_url}/break", "method": "POST"},
    }
    (pytester.path / "breaks.json").write_text(experiment("breaks", [health()], [breaks]))
    (pytester.path / "interrupt.json").write_text(
        experiment(
            "interrupted",
            [],
            [python("ctrl-c", "interrupt"), python("never reached", "nothing")],
            rollbacks=[python("rollback", "nothing")],
        )
    )

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            "-s", "-p", "no:cacheprovider", "--chaos-journal-dir", "journals", *args
        )

    result = run("--chaos-seed", "5", "--deselect", "test_files.py::test_dry_run_plays_no_action")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # by the last test, after the others
    result.stdout.fnmatch_lines(["*3 passed*"])
    printed = result.stdout.str()
    # Python's random drew from the test's own stream of the session seed
    expected = random.Random(TestSeeds(5, "test_files.py::test_seeded").int_seed("chaostoolkit"))
    assert f"DRAW {expected.random()}" in printed
    # the session's own Toxiproxy, though the experiment names none
    assert re.search(r"TOXIPROXY_URL http://127\.0\.0\.1:\d+", printed)
    run("--chaos-dry-run", "-k", "dry_run").assert_outcomes(passed=1)
    journal = journals(pytester.path / "journals")["interrupted"]
    assert journal["status"] == "interrupted"
    assert [run["activity"]["name"] for run in journal["run"]] == ["ctrl-c"]
    assert journal["rollbacks"] == []  # Chaos Toolkit's default: none after an interruption


def test_an_experiment_using_a_toxiproxy_server_that_xdist_workers_share_is_refused() -> None:
    """Putting the server back after the run would undo the other workers' proxies too."""
    from pytest_chaos.ctk import files

    uses_toxiproxy = {"method": [{"provider": {"module": "chaostoxi.proxy.actions"}}]}
    spec = files.ExperimentFile(Path("proxy.json"), document=uses_toxiproxy)
    around = files.Surroundings(seed=1, toxiproxy_url=str, toxiproxy_shared=True)
    with (
        pytest.raises(
            ValueError, match=r"proxy\.json uses Toxiproxy.*not one that other pytest-xdist"
        ),
        files._restored_toxiproxy(spec, around, {}),
    ):
        pass
