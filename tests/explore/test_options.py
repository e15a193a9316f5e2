"""A round's session gets the exploring session's options, without the tests it named and
the options that choose tests: the rounds name their runs themselves."""

from __future__ import annotations

import pytest

from pytest_chaos.plugin.explore_rounds import options


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
