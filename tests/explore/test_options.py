"""The explorer's options: a round's session gets the exploring session's, without the
tests it named and the options that choose tests (the rounds name their runs themselves);
the budget is runs or a duration, and a bad one is refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaos.explore.settings import Budget
from pytest_chaos.plugin.explore_rounds import options
from pytest_chaos.plugin.session import chaos_session

from .sessions import copy_project, run_pytest


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (["tests", "-x", "--chaos-seed", "3"], ["-x", "--chaos-seed", "3"]),
        (["-k", "checkout", "tests/t.py", "-n", "2"], ["-n", "2"]),
        (["-kcheckout", "-m", "slow", "--lf", "--deselect", "t.py::a", "t.py"], []),
        (
            ["--ignore=vendor", "--sw", "-p", "no:randomly", "--junitxml", "out.xml"],
            ["-p", "no:randomly", "--junitxml", "out.xml"],
        ),
        (["--rootdir", "tests", "tests"], ["--rootdir", "tests"]),
    ],
)
def test_the_rounds_keep_what_does_not_choose_tests(
    pytester: pytest.Pytester, given: list[str], kept: list[str]
) -> None:
    pytester.makepyfile(t="def test_a(): pass\n")
    (pytester.path / "tests").mkdir()
    config = pytester.parseconfig(*given)
    assert [arg for arg in options(config) if not arg.startswith("--basetemp=")] == kept


def test_exploring_refuses_a_dry_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(t="def test_a(): pass\n")
    result = pytester.runpytest_subprocess(
        "--chaos-explore", "--chaos-dry-run", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-explore cannot run under --chaos-dry-run*"])


def test_nothing_to_explore_starts_no_round(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_t="import pytest\n\n@pytest.mark.chaos(explore=False)\ndef test_a(): pass\n"
    )
    result = pytester.runpytest_subprocess("--chaos-explore", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*1 deselected*"])
    result.stdout.no_fnmatch_line("*chaos explore: baseline*")


@pytest.mark.parametrize(
    ("value", "budget"),
    [("200", Budget(runs=200)), ("90s", Budget(seconds=90)), ("1.5m", Budget(seconds=90))],
)
def test_the_budget_is_runs_or_a_duration(
    pytester: pytest.Pytester, value: str, budget: Budget
) -> None:
    config = pytester.parseconfigure("--chaos-explore-budget", value)
    assert chaos_session(config).settings.explore.budget == budget


@pytest.mark.parametrize("value", ["0", "5x", "-3", "10 runs"])
def test_a_bad_budget_is_refused_naming_it(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(t="def test_a(): pass\n")
    result = pytester.runpytest_subprocess(
        "--chaos-explore", f"--chaos-explore-budget={value}", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--chaos-explore-budget='{value}': expected a number of runs (200) or a duration*"]
    )


def test_a_run_budget_on_the_command_line_cuts_the_runs(tmp_path: Path) -> None:
    """Three fault runs of the project's first test, the rest counted as over the budget."""
    folder = copy_project(tmp_path)
    test = "test_project.py::test_stock_is_counted"
    session = run_pytest(folder, "--chaos-explore", "--chaos-explore-budget", "3", test)
    explore = session.summary["explore"]
    made = [run for run in session.runs if run["outcome"] != "not run"]
    assert len(made) == 3, session.output[-3000:]
    assert sum(r["pruned"].get("over the budget", 0) for r in explore["rounds"]) > 0
