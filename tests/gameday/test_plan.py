"""Reading a game-day plan: every key with its default, and every bad value named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaos.cli import main
from pytest_chaos.gameday import PlanError, load
from pytest_chaos.gameday.plan import DEFAULT_INSTALL, DEFAULT_PYTHON, HaltProbe

from . import write_plan

FULL = """
[gameday]
name = "checkout resilience"
description = "Does checkout survive its dependencies?"
owners = ["alice@example.com"]
runbooks = ["https://wiki.example.com/runbooks/checkout"]
repetitions = 3
seed = 42
output = "reports/gameday"

[suite]
directory = "suite"
args = ["tests/chaos", "-x"]
markers = "chaos and not slow"

[targets]
toxiproxy = "http://127.0.0.1:8474"
docker_host = "unix:///run/podman/podman.sock"

[halt]
min_score = 50
max_deviated = 3
max_duration_s = 600
grace_s = 5

[[halt.probe]]
url = "http://127.0.0.1:8080/health"
status = 204
every_s = 0.5
timeout_s = 1

[[halt.probe]]
url = "http://127.0.0.1:8081/ready"

[schedule]
cron = "0  9 * * MON"
python = "3.12"
install = "pip install -e .[test]"
"""

MINIMAL = """
[gameday]
name = "smoke"
[suite]
"""


def test_a_full_plan_is_read_into_its_parts(tmp_path: Path) -> None:
    (tmp_path / "suite").mkdir()
    plan = load(write_plan(tmp_path, FULL))
    assert plan.name == "checkout resilience"
    assert plan.description == "Does checkout survive its dependencies?"
    assert plan.owners == ("alice@example.com",)
    assert plan.runbooks == ("https://wiki.example.com/runbooks/checkout",)
    assert (plan.repetitions, plan.seed) == (3, 42)
    assert plan.output == tmp_path / "reports" / "gameday"
    assert plan.suite.directory == tmp_path / "suite"
    assert plan.suite.args == ("tests/chaos", "-x")
    assert plan.suite.markers == "chaos and not slow"
    assert plan.targets.toxiproxy == "http://127.0.0.1:8474"
    assert plan.targets.docker_host == "unix:///run/podman/podman.sock"
    assert (plan.halt.min_score, plan.halt.max_deviated) == (50.0, 3)
    assert (plan.halt.max_duration_s, plan.halt.grace_s) == (600.0, 5.0)
    assert plan.halt.probes == (
        HaltProbe("http://127.0.0.1:8080/health", status=204, every_s=0.5, timeout_s=1.0),
        HaltProbe("http://127.0.0.1:8081/ready", status=200, every_s=1.0, timeout_s=2.0),
    )
    assert plan.schedule.cron == "0 9 * * MON"  # spacing normalised
    assert plan.schedule.python == "3.12"
    assert plan.schedule.install == "pip install -e .[test]"
    assert plan.path == tmp_path / "plan.toml"


def test_a_minimal_plan_takes_the_defaults(tmp_path: Path) -> None:
    plan = load(write_plan(tmp_path, MINIMAL))
    assert plan.repetitions == 1 and plan.seed is None
    assert plan.owners == () and plan.runbooks == ()
    assert plan.output == tmp_path / "gameday-reports"
    assert plan.suite.directory == tmp_path and plan.suite.args == ()
    assert plan.suite.markers is None
    assert plan.targets.toxiproxy is None and plan.targets.docker_host is None
    assert plan.halt.probes == () and plan.halt.min_score is None
    assert plan.halt.grace_s == 10.0
    assert plan.schedule.cron is None
    assert (plan.schedule.python, plan.schedule.install) == (DEFAULT_PYTHON, DEFAULT_INSTALL)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MINIMAL + "[gamedays]\n",
            "the plan has unknown key 'gamedays'; allowed tables: gameday, suite",
        ),
        (
            MINIMAL.replace("[suite]", "repetition = 2\n[suite]"),
            "[gameday] has unknown key 'repetition'; allowed keys: name, description",
        ),
        (
            MINIMAL + "[halt]\n[[halt.probe]]\nurl = 'http://127.0.0.1:1/'\nstatuss = 200\n",
            "[[halt.probe]] #1 has unknown key 'statuss'; allowed keys: url, status, every_s, timeout_s",
        ),
        ("[suite]\n", "no [gameday] table"),
        ("[gameday]\nname = 'x'\n", "no [suite] table"),
        ("[gameday]\n[suite]\n", "[gameday] needs name (a non-empty string)"),
        ('[gameday]\nname = ""\n[suite]\n', "[gameday] name = '': use a non-empty string"),
        (
            MINIMAL.replace("[suite]", "repetitions = 0\n[suite]"),
            "[gameday] repetitions = 0: use an integer from 1 to 1000",
        ),
        (
            MINIMAL.replace("[suite]", "repetitions = true\n[suite]"),
            "[gameday] repetitions = True: use an integer from 1 to 1000",
        ),
        (
            MINIMAL.replace("[suite]", "seed = -1\n[suite]"),
            "[gameday] seed = -1: use an integer from 0 to",
        ),
        (
            MINIMAL.replace("[suite]", 'owners = "alice"\n[suite]'),
            "[gameday] owners = 'alice': use a list of strings",
        ),
        (
            MINIMAL.replace("[suite]", 'runbooks = ["wiki/checkout"]\n[suite]'),
            "[gameday] runbooks = ['wiki/checkout']: use a list of URLs",
        ),
        (MINIMAL + 'args = "tests"\n', "[suite] args = 'tests': use a list of strings"),
        (MINIMAL + 'directory = "nowhere"\n', "[suite] directory = 'nowhere': "),
        (
            MINIMAL + "[targets]\ntoxiproxy = 'embedded'\n",
            "[targets] toxiproxy = 'embedded': use a Toxiproxy API URL",
        ),
        (
            MINIMAL + "[targets]\ndocker_host = '/var/run/docker.sock'\n",
            "[targets] docker_host = '/var/run/docker.sock': use a DOCKER_HOST such as",
        ),
        (
            MINIMAL + "[halt]\nmin_score = 150\n",
            "[halt] min_score = 150: use a number from 0 to 100",
        ),
        (
            MINIMAL + "[halt]\nmax_deviated = 0\n",
            "[halt] max_deviated = 0: use an integer from 1 to",
        ),
        (
            MINIMAL + "[halt]\nmax_duration_s = 0\n",
            "[halt] max_duration_s = 0: use a number more than 0",
        ),
        (
            MINIMAL + "[halt]\nprobe = 'http://x'\n",
            "[halt] probe = 'http://x': use [[halt.probe]] tables",
        ),
        (
            MINIMAL + "[[halt.probe]]\nstatus = 200\n",
            "[[halt.probe]] #1 needs url (an http:// or https:// URL)",
        ),
        (
            MINIMAL + "[[halt.probe]]\nurl = 'http://127.0.0.1:1/'\nstatus = 99\n",
            "[[halt.probe]] #1 status = 99: use an integer from 100 to 599",
        ),
        (
            MINIMAL + "[[halt.probe]]\nurl = 'http://127.0.0.1:1/'\nevery_s = 0\n",
            "[[halt.probe]] #1 every_s = 0: use a number more than 0 to 3600",
        ),
        (
            MINIMAL + "[schedule]\ncron = '0 9 * *'\n",
            "[schedule] cron = '0 9 * *': 4 fields; use 5",
        ),
        (
            MINIMAL + "[schedule]\ncron = '0 25 * * *'\n",
            "[schedule] cron = '0 25 * * *': hour field '25': '25' is out of range",
        ),
        ("gameday = 3\n[suite]\n", "[gameday] is 3; it must be a table of keys"),
        ("[gameday\n", "not valid TOML"),
    ],
)
def test_a_bad_plan_names_the_key_the_value_and_what_is_allowed(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_plan(tmp_path, text)
    with pytest.raises(PlanError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_a_missing_plan_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such plan file"):
        load(tmp_path / "missing.toml")


def test_the_command_exits_2_on_a_bad_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_plan(tmp_path, MINIMAL + "[halt]\nmin_score = 150\n")
    assert main(["gameday", "run", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("pytest-chaos gameday run: ")
    assert "[halt] min_score = 150: use a number from 0 to 100" in error
    assert not (tmp_path / "gameday-reports").exists()  # nothing ran


def test_relative_paths_start_from_the_plan_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = tmp_path / "plans"
    (plans / "suite").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    plan = load(Path("plans") / write_plan(plans, MINIMAL + 'directory = "suite"\n').name)
    assert plan.suite.directory == plans / "suite"
    assert plan.output == plans / "gameday-reports"
