"""The score, the gates and the evidence as a user meets them, through pytester: the
terminal table, exit codes, summary.json, JUnit properties, GitHub's job summary, Allure,
pytest-xdist, and the live progress of long experiments. Experiments run against a real
shop behind the embedded proxy."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

# Loaded before any inner session (see tests/experiment/test_outcomes.py): pytester's
# in-process runs forget the modules a run imported.
import pytest_chaos.plugin.chaos
import pytest_chaos.probes
import pytest_chaos.steady.load  # noqa: F401

from ..experiment.lab import shop_lab
from ..servers import isolate_chaos_env

pytestmark = pytest.mark.usefixtures("isolated_env")

#: Four chaos tests: two experiments (one holds, one deviates: 3 of 5 checks held), a
#: plain chaos test that passes and one that is skipped; and a test that is not chaos.
SUITE = """
import pytest
from pytest_chaos import faults, probes


def order(shop, timeout):
    return [probes.http(shop + "/order", status=200, timeout=timeout, name="order")]


@pytest.mark.chaos(weight=4, hypothesis="orders survive a hung stock service")
def test_resilient(chaos, resilient_shop):
    chaos.experiment(
        "resilient",
        steady_state=order(resilient_shop, timeout=2),
        method=[faults.timeout("stock", for_s=0.5)],
        strategy="during",
        frequency_s=0.2,
    )


@pytest.mark.chaos(weight=2, tags=["network"])
def test_fragile(chaos, fragile_shop):
    chaos.experiment(
        "fragile",
        steady_state=order(fragile_shop, timeout=0.25),
        method=[faults.timeout("stock", start_after_s=0.3, for_s=1)],
        strategy="continuously",
        frequency_s=0.25,
    )


@pytest.mark.chaos(weight=2)
def test_plain(toxiproxy, stock):
    stock.add_toxic("latency", latency=10)


@pytest.mark.chaos(weight=10)
def test_skipped():
    pytest.skip("not today")


def test_not_chaos():
    pass
"""


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    shop_lab(pytester).makepyfile(test_shop=SUITE)
    return pytester


def summary(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "summary.json").read_text())
    return data


def by_test(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["nodeid"].split("::")[1]: entry for entry in document["results"]}


def test_the_summary_shows_the_score_over_a_table_and_the_report_holds_it(
    lab: pytest.Pytester,
) -> None:
    result = lab.runpytest("--chaos-seed", "11", "--chaos-report", "evidence")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # no gate: a deviation fails the run
    document = summary(lab.path / "evidence")
    tests = by_test(document)
    fragile = tests["test_fragile"]
    assert fragile["verdict"] == "deviated" and fragile["tags"] == ["network"]
    passed, total = fragile["checks"]["passed"], fragile["checks"]["total"]
    assert 0 < passed < total
    assert tests["test_resilient"]["checks"]["passed"] == tests["test_resilient"]["checks"]["total"]
    assert tests["test_plain"]["checks"] == {"passed": 1, "total": 1}
    assert tests["test_skipped"]["verdict"] == "skipped"
    assert "test_not_chaos" not in tests
    expected = round(100 * (4 * 1 + 2 * passed / total + 2 * 1) / 8, 1)
    assert document["score"] == expected
    assert document["seed"] == 11 and document["gates"]["passed"]
    assert document["totals"]["deviated"] == 1 and document["totals"]["tests"] == 4
    assert fragile["replay"] == "pytest --chaos-seed 11 test_shop.py::test_fragile"
    assert fragile["faults"] == ["timeout of stock (ms=0) from 0.3 s for 1 s"]
    assert tests["test_plain"]["faults"] == ["latency on stock (latency=10)"]
    (path,) = fragile["journals"]
    journal = json.loads((lab.path / "evidence" / path).read_text())
    assert journal["deviated"] is True and journal["pytest_chaos"]["seed"] == 11
    result.stdout.fnmatch_lines(
        [
            "*= chaos =*",
            f"resilience score {expected:g}/100",
            "verdict *checks *weight *seed *test",
            "passed *4 *11 *test_shop.py::test_resilient",
            "*faults: timeout of stock (ms=0) for 0.5 s",
            f"deviated *{passed}/{total} *2 *11 *test_shop.py::test_fragile",
            "passed *1/1 *2 *11 *test_shop.py::test_plain",
            "skipped *- *10 *11 *test_shop.py::test_skipped",
            "chaos report: *evidence*report.html",
        ]
    )


def test_min_score_gate_decides_the_exit_code(lab: pytest.Pytester) -> None:
    """With a gate, a deviation within it does not fail the run; below it, the run fails
    and says what pulled the score down."""
    lenient = lab.runpytest("--chaos-min-score", "50")
    lenient.assert_outcomes(passed=3, failed=1, skipped=1)
    assert lenient.ret == pytest.ExitCode.OK
    lenient.stdout.fnmatch_lines(
        [
            "resilience score */100 - gates passed",
            "gates passed: 1 deviated experiment(s) tolerated, exit code 0: "
            "test_shop.py::test_fragile",
        ]
    )
    strict = lab.runpytest("--chaos-min-score", "99.5")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines(
        [
            "resilience score */100 - gates FAILED",
            "gate failed: resilience score * < --chaos-min-score 99.5; pulled down by: "
            "test_shop.py::test_fragile deviated (*/* checks, weight 2, -*)",
        ]
    )


def test_deviation_gate_and_other_failures(lab: pytest.Pytester) -> None:
    """``--chaos-max-deviated`` counts deviated experiments; a failure that is not a
    deviation (an assertion, a broken fixture) fails the run whatever the gates say."""
    assert lab.runpytest("--chaos-max-deviated", "1").ret == pytest.ExitCode.OK
    result = lab.runpytest("--chaos-max-deviated", "0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["gate failed: 1 experiment(s) deviated > --chaos-max-deviated 0: *test_fragile"]
    )
    lab.makepyfile(
        test_broken="""
        import pytest

        @pytest.mark.chaos
        def test_assertion():
            assert 1 == 2
        """
    )
    broken = lab.runpytest("--chaos-min-score", "0", "--chaos-max-deviated", "5")
    assert broken.ret == pytest.ExitCode.TESTS_FAILED
    broken.stdout.fnmatch_lines(["failed *0/1 *1 *test_broken.py::test_assertion"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chaos-min-score", "120"], "--chaos-min-score='120': expected a number from 0 to 100"),
        (
            ["--chaos-min-score", "high"],
            "--chaos-min-score='high': expected a number from 0 to 100",
        ),
        (["--chaos-max-deviated", "-1"], "--chaos-max-deviated='-1': expected a whole number*"),
    ],
)
def test_bad_gate_values_stop_the_session_at_start(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_junit_properties_and_the_github_job_summary(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = lab.path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    lab.runpytest("--chaos-seed", "3", "--junitxml", "junit.xml").assert_outcomes(
        passed=3, failed=1, skipped=1
    )
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ElementTree.parse(lab.path / "junit.xml").iter("testcase")
    }
    assert cases["test_fragile"] == {
        "chaos_verdict": "deviated",
        "chaos_weight": "2",
        "chaos_seed": "3",
        "chaos_faults": "timeout of stock (ms=0) from 0.3 s for 1 s",
    }
    assert cases["test_resilient"]["chaos_verdict"] == "passed"
    assert cases["test_not_chaos"] == {}
    text = step_summary.read_text()
    assert text.startswith("earlier step\n### pytest-chaos: resilience score ")
    assert "| test | faults | verdict | checks | weight | seed |" in text
    assert "| `test_shop.py::test_fragile` | timeout of stock (ms=0) from 0.3 s for 1 s | " in text


def test_xdist_workers_hand_their_results_to_the_controller(lab: pytest.Pytester) -> None:
    result = lab.runpytest_subprocess(
        "-n", "2", "--chaos-seed", "5", "--chaos-report", "evidence", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    tests = by_test(summary(lab.path / "evidence"))
    assert {name: entry["verdict"] for name, entry in tests.items()} == {
        "test_resilient": "passed",
        "test_fragile": "deviated",
        "test_plain": "passed",
        "test_skipped": "skipped",
    }
    assert all(entry["seed"] == 5 for entry in tests.values())
    assert len(tests["test_fragile"]["journals"]) == 1
    result.stdout.fnmatch_lines(["resilience score */100", "deviated *test_shop.py::test_fragile"])


def test_allure_gets_each_journal_its_chart_and_fault_steps(lab: pytest.Pytester) -> None:
    pytest.importorskip("allure_pytest")
    lab.runpytest("--alluredir", "allure").assert_outcomes(passed=3, failed=1, skipped=1)
    results = [json.loads(path.read_text()) for path in (lab.path / "allure").glob("*-result.json")]
    fragile = next(r for r in results if r["name"] == "test_fragile")
    names = {a["name"]: a for a in fragile.get("attachments", [])}
    journal = names["chaos journal: fragile"]
    assert journal["type"] == "application/json"
    assert json.loads((lab.path / "allure" / journal["source"]).read_text())["deviated"]
    chart = names["chaos timeline: fragile"]
    assert chart["type"] == "image/svg+xml"
    assert (lab.path / "allure" / chart["source"]).read_text().lstrip().startswith("<svg")
    (step,) = [step["name"] for step in fragile.get("steps", [])]
    shown = re.fullmatch(
        r"fault: timeout of stock \(ms=0\) from 0\.3 s for 1 s \(t\+([\d.]+) s to t\+([\d.]+) s\)",
        step,
    )
    assert shown is not None, step
    applied, ended = map(float, shown.groups())
    assert applied >= 0.3 and ended - applied >= 1.0  # never early, however late


def test_long_experiments_show_their_phases_short_ones_stay_quiet(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_phases="""
        import pytest
        from pytest_chaos import probes


        def ok():
            return True


        @pytest.mark.chaos
        def test_long(chaos):
            chaos.experiment("long", steady_state=[probes.call(ok)], duration_s=5)


        @pytest.mark.chaos
        def test_short(chaos):
            chaos.experiment("short", steady_state=[probes.call(ok)], duration_s=0.2)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "  chaos: long: steady state before (t=0.0 s)",
            "  chaos: long: method: 0 fault(s) on their timeline (t=*)",
            "  chaos: long: rollback (t=5.*)",
            "  chaos: long: steady state after (t=5.*)",
        ]
    )
    assert "chaos: short:" not in result.stdout.str()
    assert "chaos: long:" not in pytester.runpytest("-q").stdout.str()


def test_without_the_terminal_reporter_the_evidence_is_still_gathered(
    lab: pytest.Pytester,
) -> None:
    """The results are read from the terminal reporter's record of every report; with
    ``-p no:terminal`` a collector of our own keeps them, and the gates still decide."""
    result = lab.runpytest(
        "-p", "no:terminal", "--chaos-report", "evidence", "--chaos-max-deviated", "0"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    verdicts = {
        name: entry["verdict"] for name, entry in by_test(summary(lab.path / "evidence")).items()
    }
    assert verdicts == {
        "test_resilient": "passed",
        "test_fragile": "deviated",
        "test_plain": "passed",
        "test_skipped": "skipped",
    }
    assert not summary(lab.path / "evidence")["gates"]["passed"]
