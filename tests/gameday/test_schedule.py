"""Scheduling a game day: cron expressions checked field by field, the crontab line (run
for real by a shell), and a GitHub Actions workflow read back as YAML."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from pytest_chaos.cli import main
from pytest_chaos.gameday import ScheduleError, crontab_line, github_workflow, load
from pytest_chaos.gameday.schedule import normalize

from ..servers import isolate_chaos_env
from . import SWITCH_SUITE, plan_text, write_plan

SCHEDULE = '[schedule]\ncron = "30 6 * * 1-5"\n'


@pytest.mark.parametrize(
    ("expression", "normalized"),
    [
        ("0 9 * * 1", "0 9 * * 1"),
        ("  */15   0-6 * * *  ", "*/15 0-6 * * *"),
        ("0,30 8-18/2 1,15 jan-jun MON-FRI", "0,30 8-18/2 1,15 jan-jun MON-FRI"),
        ("59 23 31 12 7", "59 23 31 12 7"),
        ("@daily", "0 0 * * *"),
        ("@Weekly", "0 0 * * 0"),
        ("@yearly", "0 0 1 1 *"),
    ],
)
def test_valid_cron_expressions(expression: str, normalized: str) -> None:
    assert normalize(expression) == normalized


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 9 * *", "4 fields; use 5: minute hour day-of-month month day-of-week"),
        ("60 * * * *", "minute field '60': '60' is out of range; use *, a value from 0 to 59"),
        ("* 24 * * *", "hour field '24': '24' is out of range"),
        ("* * 0 * *", "day of month field '0': '0' is out of range; use *, a value from 1 to 31"),
        (
            "* * * 13 * ",
            "month field '13': '13' is out of range; use *, a value from 1 to 12 or JAN-DEC",
        ),
        (
            "* * * * 8",
            "day of week field '8': '8' is out of range; use *, a value from 0 to 7 or SUN-SAT",
        ),
        ("* * * * funday", "day of week field 'funday': 'funday' is out of range"),
        ("* 18-8 * * *", "hour field '18-8': range '18-8' runs backwards"),
        ("*/0 * * * *", "minute field '*/0': step /0 is out of range"),
        ("5/10 * * * *", "minute field '5/10': a step needs * or a range before it, not '5'"),
        ("1,,2 * * * *", "minute field '1,,2': '' is not a value, range or step"),
        ("? * * * *", "minute field '?': '?' is not a value, range or step"),
        ("@reboot", "unknown macro '@reboot'"),
    ],
)
def test_invalid_cron_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        normalize(expression)
    assert message in str(raised.value)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git repository with the plan in ``gameday/`` and the suite beside it."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "gameday").mkdir()
    (tmp_path / "gameday" / "test_switch.py").write_text(SWITCH_SUITE)
    write_plan(tmp_path / "gameday", plan_text(suite="test_switch.py", extra=SCHEDULE))
    return tmp_path


def test_the_crontab_line_runs_the_game_day(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line's command, run by a shell from elsewhere as cron would, runs the game day
    from the plan's folder and logs into the output folder."""
    isolate_chaos_env(monkeypatch)
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("SWITCH_MARKS", str(marks))
    monkeypatch.setenv("SWITCH_RESILIENT", "1")
    path = repository / "gameday" / "plan.toml"
    comment, line = crontab_line(load(path), path).splitlines()
    assert comment.startswith("# pytest-chaos game day 'checkout resilience'")
    assert "UTC" in comment
    fields = line.split(" ", 5)
    assert fields[:5] == ["30", "6", "*", "*", "1-5"]
    done = subprocess.run(["sh", "-c", fields[5]], cwd="/", timeout=120)
    assert done.returncode == 0
    out = repository / "gameday" / "gameday-reports"
    (run,) = json.loads((out / "history.json").read_text())["runs"]
    assert run["status"] == "held"
    assert "game day held" in (out / "cron.log").read_text()


def test_the_crontab_line_quotes_paths_and_escapes_percent_signs(tmp_path: Path) -> None:
    folder = tmp_path / "my plans 100%"
    folder.mkdir()
    path = write_plan(folder, plan_text(suite="x", extra=SCHEDULE))
    text = crontab_line(load(path), path)
    line = text.splitlines()[1]
    assert "'" + str(folder).replace("%", "\\%") + "'" in line
    assert "100%" not in line  # an unescaped % would end cron's command


def test_the_github_workflow_runs_on_schedule_and_on_demand(repository: Path) -> None:
    path = repository / "gameday" / "plan.toml"
    text = github_workflow(load(path), path)
    workflow = yaml.safe_load(text)
    on = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert on["schedule"] == [{"cron": "30 6 * * 1-5"}]
    assert on["workflow_dispatch"]["inputs"]["dry_run"]["type"] == "boolean"
    assert workflow["name"] == "Game day: checkout resilience"
    steps = workflow["jobs"]["gameday"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert uses[0].startswith("actions/checkout@")
    assert uses[1].startswith("actions/setup-python@")
    assert steps[1]["with"]["python-version"] == "3.11"
    assert steps[2]["run"] == "python -m pip install pytest-chaos"
    run_step = next(step for step in steps if step.get("name") == "Run the game day")
    assert run_step["run"].startswith("pytest-chaos gameday run gameday/plan.toml ")
    assert "--dry-run" in run_step["run"]
    cache = [step for step in steps if step.get("uses", "").startswith("actions/cache/")]
    assert [step["with"]["path"] for step in cache] == ["gameday/gameday-reports"] * 2
    upload = next(
        step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@")
    )
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "gameday/gameday-reports"
    assert upload["with"]["name"] == "gameday-checkout-resilience"
    assert "# Owner: alice@example.com" in text
    assert "# Runbook: https://wiki.example.com/runbooks/checkout" in text


def test_a_plan_outside_a_repository_cannot_become_a_workflow(tmp_path: Path) -> None:
    path = write_plan(tmp_path, plan_text(suite="x", extra=SCHEDULE))
    with pytest.raises(ScheduleError, match="not inside a git repository"):
        github_workflow(load(path), path)


def test_a_plan_without_a_schedule_says_how_to_add_one(
    repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_plan(repository, plan_text(suite="x"), "unscheduled.toml")
    assert main(["gameday", "schedule", str(path), "--print", "cron"]) == 2
    error = capsys.readouterr().err
    assert 'no [schedule] cron; add one, such as cron = "0 9 * * 1"' in error


def test_the_command_prints_either_form(
    repository: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repository / "gameday" / "plan.toml"
    assert main(["gameday", "schedule", str(path), "--print", "github"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)[True]["schedule"][0]["cron"] == "30 6 * * 1-5"
    assert main(["gameday", "schedule", str(path), "--print", "cron"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("30 6 * * 1-5 mkdir -p ")
    with pytest.raises(SystemExit) as raised:
        main(["gameday", "schedule", str(path), "--print", "jenkins"])
    assert raised.value.code == 2
    assert "invalid choice: 'jenkins'" in capsys.readouterr().err
