"""The shop's game-day plan, ``gameday.toml``, proved: it loads and says what it should,
its suite collects the network and process tests and the SLO experiment, the real ``pytest-chaos gameday schedule``
prints it for cron and for GitHub Actions, and a small game day drawn from it (two fast
tests, one repetition) runs for real and reports what held."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chaos import gameday
from pytest_chaos.gameday.run import pytest_args

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SHOP_DIR = Path(__file__).resolve().parent.parent
PLAN = SHOP_DIR / "gameday.toml"
REPOSITORY = SHOP_DIR.parent.parent
CLI = [sys.executable, "-m", "pytest_chaos.cli", "gameday"]
FAST_TESTS = (
    "tests/test_shop_network.py::test_orders_are_paid_through_a_slow_payments_link",
    "tests/test_shop_processes.py::test_orders_survive_a_crash_of_the_shop",
)


@pytest.fixture
def cli(inner_env):
    """``cli(*args, cwd=SHOP_DIR)``: runs ``pytest-chaos gameday ARGS``, a real process."""

    def run(*args, cwd=SHOP_DIR, timeout=60):
        return subprocess.run(
            [*CLI, *args], cwd=cwd, env=inner_env, capture_output=True, text=True, timeout=timeout
        )

    return run


def toml(data):
    """``data`` (tables of strings, numbers and lists of strings) as TOML: a JSON string or
    list is a TOML one."""
    lines = []
    for table, values in data.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            assert not isinstance(value, dict), f"[{table}] {key}: nested tables not written"
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def test_the_plan_loads_and_says_who_what_and_when():
    plan = gameday.load(PLAN)
    assert plan.name == "shop resilience"
    assert plan.owners and plan.runbooks
    assert all(url.startswith("https://") for url in plan.runbooks)
    assert plan.repetitions == 2
    assert plan.seed is not None
    assert plan.output == SHOP_DIR / "gameday-reports"
    assert plan.suite.directory == SHOP_DIR
    assert plan.suite.args == (
        "tests/test_shop_network.py",
        "tests/test_shop_processes.py",
        "tests/test_shop_experiment.py::test_orders_keep_their_slo_while_payments_is_slow",
    )
    assert all((SHOP_DIR / arg.split("::")[0]).is_file() for arg in plan.suite.args)
    # weekly: one day of the week, any day of the month, every month
    minute, hour, day, month, weekday = plan.schedule.cron.split()
    assert (day, month) == ("*", "*")
    assert minute.isdigit() and hour.isdigit() and weekday.isdigit()
    assert "redis-server" in plan.schedule.install and ".[examples]" in plan.schedule.install
    assert plan.halt.min_score == 80
    assert plan.halt.max_deviated == 1
    assert plan.halt.max_duration_s == 300
    # The shop's services live on ports chosen by each test, for the test: a probe of a
    # fixed URL would find nothing there and halt the game day before it starts.
    assert plan.halt.probes == ()
    assert plan.targets.toxiproxy is None and plan.targets.docker_host is None


def test_the_plans_suite_is_the_fast_part_of_the_shops(inner_env):
    """What each repetition runs, collected with the very arguments the game day passes:
    the network and process tests, and the SLO experiment the shop holds (not its naive
    variant, an expected failure)."""
    plan = gameday.load(PLAN)
    args = pytest_args(plan, seed=1)
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=plan.suite.directory,
        env=inner_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    nodeids = [line for line in collected.stdout.splitlines() if "::" in line]
    files = [nodeid.split("::")[0].rsplit("/", 1)[-1] for nodeid in nodeids]
    assert files.count("test_shop_network.py") == 6, nodeids
    assert files.count("test_shop_processes.py") == 3, nodeids
    (experiment,) = [nodeid for nodeid in nodeids if "test_shop_experiment.py" in nodeid]
    assert experiment.endswith("::test_orders_keep_their_slo_while_payments_is_slow")
    assert len(nodeids) == 10, nodeids
    assert "deselected" not in collected.stdout  # every one of them is a chaos test


def test_schedule_prints_a_crontab_line(cli):
    plan = gameday.load(PLAN)
    result = cli("schedule", "gameday.toml", "--print", "cron")
    assert result.returncode == 0, result.stderr
    comment, line = result.stdout.splitlines()
    assert comment.startswith("# pytest-chaos game day 'shop resilience' (owners: ")
    assert "UTC" in comment
    assert line.split()[:5] == plan.schedule.cron.split()
    command = line.split(maxsplit=5)[5]
    assert f"cd {shlex.quote(str(SHOP_DIR))} &&" in command
    assert f"{shlex.quote(sys.executable)} -m pytest_chaos.cli gameday run gameday.toml" in command
    log = shlex.quote(str(SHOP_DIR / "gameday-reports" / "cron.log"))
    assert command.endswith(f">> {log} 2>&1")


@pytest.mark.skipif(
    not (REPOSITORY / ".git").exists(),
    reason="a GitHub workflow needs the plan inside a git checkout; this is not one",
)
def test_schedule_prints_a_github_workflow(cli):
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the workflow back")
    plan = gameday.load(PLAN)
    result = cli("schedule", str(PLAN), "--print", "github", cwd=REPOSITORY)
    assert result.returncode == 0, result.stderr
    workflow = yaml.safe_load(result.stdout)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert triggers["schedule"] == [{"cron": plan.schedule.cron}]
    assert "dry_run" in triggers["workflow_dispatch"]["inputs"]
    assert workflow["name"] == "Game day: shop resilience"
    steps = {
        step.get("name", step.get("uses")): step for step in workflow["jobs"]["gameday"]["steps"]
    }
    assert steps["Install"]["run"] == plan.schedule.install
    assert steps["actions/setup-python@v5"]["with"]["python-version"] == "3.11"
    run = steps["Run the game day"]["run"]
    assert run.startswith("pytest-chaos gameday run examples/shop/gameday.toml ")
    assert "--dry-run" in run
    for name in (
        "Restore the history of earlier game days",
        "Keep the history for the next game day",
        "Upload the game-day report",
    ):
        assert steps[name]["with"]["path"] == "examples/shop/gameday-reports"


def test_a_small_game_day_from_the_plan_runs_and_reports_what_held(tmp_path, cli):
    """The real plan, cut down to two fast tests (a network fault, a crash of the shop) and
    one repetition: everything else (owners, runbooks, halt conditions, seed) is the plan's."""
    data = tomllib.loads(PLAN.read_text(encoding="utf-8"))
    data["gameday"]["repetitions"] = 1
    data["suite"]["directory"] = str(SHOP_DIR)
    data["suite"]["args"] = [*FAST_TESTS, "-p", "no:cacheprovider"]
    small = tmp_path / "small.toml"
    small.write_text(toml(data), encoding="utf-8")
    plan = gameday.load(small)
    (seed,) = gameday.draw_seeds(plan, 1)  # the plan's seed, its first game day
    out = tmp_path / "reports"

    result = cli("run", str(small), "--out", str(out), timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:3] == [
        "game day 'shop resilience': 1 repetition(s)",
        f"repetition 1/1: seed {seed}",
        "  score 100; 2 chaos test(s): 2 passed; pytest exited 0 (all tests passed)",
    ]
    assert re.search(
        r"^game day held: .*gameday-\S+\.html, .*gameday-\S+\.md$", result.stdout, re.M
    )

    history = json.loads((out / "history.json").read_text(encoding="utf-8"))
    (run,) = history["runs"]
    assert (run["plan"], run["status"], run["score"], run["halt"]) == (
        "shop resilience",
        "held",
        100.0,
        None,
    )
    assert run["dry_run"] is False
    (repetition,) = run["repetitions"]
    assert (repetition["seed"], repetition["exit_code"]) == (seed, 0)
    assert repetition["totals"]["tests"] == repetition["totals"]["passed"] == 2
    assert f"--chaos-seed {seed}" in repetition["replay"]
    folder = out / repetition["directory"]
    assert "2 passed" in (folder / "pytest.log").read_text(encoding="utf-8")
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8"))["seed"] == seed

    markdown = (out / "gameday.md").read_text(encoding="utf-8")
    assert "| Status | HELD |" in markdown
    assert "| Owners | shop-oncall@example.com, #team-shop |" in markdown
    held = markdown.split("## What held", 1)[1].split("\n## ", 1)[0]
    for test in FAST_TESTS:
        found = rf"\(`(?:[\w./-]*/)?{re.escape(test)}`\): held in 1 of 1 repetitions"
        assert re.search(found, held), held
    assert "Nothing broke." in markdown
    assert "None: everything held." in markdown
    assert (out / run["report"]).with_suffix(".md").read_text(encoding="utf-8") == markdown

    html = (out / "gameday.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert "shop resilience" in html and "held" in html.lower()
    for test in FAST_TESTS:
        assert test.split("::")[1] in html
    assert (out / "score.svg").is_file()
