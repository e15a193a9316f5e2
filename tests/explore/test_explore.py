"""``pytest --chaos-explore`` end to end, on ``project/``: a stock service read from a
primary (without a timeout) and a replica behind proxies, a price service whose failures
are handled, a test that touches nothing and one that opts out. One exploration, spread by
pytest-xdist over two workers, is read by every test here; one run is then replayed."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.explore.catalogue import faults_for
from pytest_chaos.explore.cells import Dependency
from pytest_chaos.explore.recording import Usage

from ..report.browser import Browser, chromium_or_skip
from .sessions import Session, copy_project, run_pytest

ARGS = (
    "--chaos-explore",
    "--chaos-seed",
    "11",
    "--chaos-explore-latency",
    "200",
    "--chaos-explore-timeout",
    "5",
    "--chaos-explore-min",
    "90",
    "-n",
    "2",
)
TCP_FAULTS = faults_for(Usage(Dependency("link", "x")))
#: A link that carried HTTP gets the proxy's HTTP faults too.
LINK_FAULTS = faults_for(Usage(Dependency("link", "x"), protocol="http"))
HTTP_FAULTS = faults_for(Usage(Dependency("http", "GET x/y")))


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return run_pytest(copy_project(tmp_path_factory.mktemp("explore")), *ARGS)


def singles(session: Session, test: str) -> dict[tuple[str, str, str], str]:
    """The single-fault runs of ``test``: (kind, dependency, fault) -> outcome."""
    return {
        (run["faults"][0]["kind"], run["faults"][0]["dependency"], run["faults"][0]["fault"]): run[
            "outcome"
        ]
        for run in session.test(test)["runs"]
        if len(run["faults"]) == 1
    }


def test_each_fault_goes_on_each_dependency_the_baseline_used(explored: Session) -> None:
    stock = explored.test("test_stock_is_counted")
    assert stock["baseline"] == "held"
    assert {(d["kind"], d["name"]) for d in stock["dependencies"] if d["uses"]} == {
        ("link", "primary"),
        ("http", "GET primary/stock/tea"),
    }
    ran = singles(explored, "test_stock_is_counted")
    assert set(ran) == {("link", "primary", f) for f in LINK_FAULTS} | {
        ("http", "GET primary/stock/tea", f) for f in HTTP_FAULTS
    }
    # the replica is a fallback the baseline never used: its faults alone change nothing
    singles_round = explored.summary["explore"]["rounds"][1]
    assert singles_round["pruned"] == {"unreached": len(TCP_FAULTS)}


def test_a_hang_says_where_it_hung(explored: Session) -> None:
    outcomes = singles(explored, "test_stock_is_counted")
    assert outcomes[("link", "primary", "blackhole")] == "hung"
    (hung,) = [run for run in explored.runs if run["outcome"] == "hung"]
    line = next(
        number
        for number, text in enumerate((explored.folder / "stock.py").read_text().splitlines(), 1)
        if "response = store.get(" in text
    )
    assert hung["where"].endswith(f"stock.py:{line} in count")
    assert "still running after 5 s" in hung["message"]


def test_the_fallback_is_combined_and_its_failure_found(explored: Session) -> None:
    pairs = [
        run for run in explored.test("test_stock_is_counted")["runs"] if len(run["faults"]) == 2
    ]
    assert pairs, "the primary's failures held thanks to the replica: they must be combined"
    assert all(
        {f["dependency"] for f in pair["faults"]} & {"replica", "GET replica/stock/tea"}
        for pair in pairs
    )
    broke = [pair for pair in pairs if pair["outcome"] == "broke"]
    down = next(
        p for p in broke if {"fault": "down", "kind": "link"}.items() <= p["faults"][-1].items()
    )
    assert "assert 0 == 5" in down["message"]
    assert (
        "declared for down on link replica: answers 503, but expected status 503" in down["message"]
    )
    # a hung fault is not combined: the hang already explains any combination with it
    assert not any(
        f["fault"] == "blackhole" and f["dependency"] == "primary"
        for p in pairs
        for f in p["faults"]
    )


def test_a_test_that_touches_nothing_is_skipped_with_a_reason(explored: Session) -> None:
    arithmetic = explored.test("test_arithmetic")
    assert arithmetic["baseline"] == "untouched"
    assert arithmetic["runs"] == []
    assert "touched nothing the explorer can break" in arithmetic["unexplored"]
    assert re.search(r"test_arithmetic\n\s+not explored: touched nothing", explored.output)


def test_a_test_can_opt_out(explored: Session) -> None:
    assert not any(
        t["test"].endswith("test_not_explored") for t in explored.summary["explore"]["tests"]
    )
    assert "1 deselected" in explored.output


def test_a_test_that_checks_the_faults_makes_its_runs_expected(explored: Session) -> None:
    outcomes = singles(explored, "test_a_missing_price_is_said")
    assert set(outcomes.values()) == {"expected"}
    assert len(outcomes) == len(LINK_FAULTS) + len(HTTP_FAULTS)


def test_pytest_xdist_spreads_the_runs(explored: Session) -> None:
    assert {run["worker"] for run in explored.runs} == {"gw0", "gw1"}


def test_the_held_share_feeds_the_score_and_the_gate(explored: Session) -> None:
    explore = explored.summary["explore"]
    good, judged = explore["held"], explore["judged"]
    assert explore["held_share"] == round(100 * good / judged, 1) < 90
    assert explore["gate"]["passed"] is False
    assert explored.returncode == 1
    assert (
        f"gate failed: explored runs held {explore['held_share']:g}% < --chaos-explore-min 90"
        in (explored.output)
    )
    stock = next(
        r for r in explored.summary["results"] if r["nodeid"].endswith("test_stock_is_counted")
    )
    runs = explored.test("test_stock_is_counted")
    assert stock["weight"] == 3
    assert (stock["checks"]["passed"], stock["checks"]["total"]) == (runs["held"], runs["judged"])
    assert explored.summary["score"] < 100


def test_the_terminal_shows_the_matrix(explored: Session) -> None:
    section = explored.output.split("= chaos explore =", 1)[1]
    assert "link primary" in section and "blackhole HUNG" in section
    for run in explored.runs:
        if run["outcome"] in ("broke", "hung"):
            assert run["replay"] in section


def test_a_broken_run_replays_alone_from_its_command(explored: Session, tmp_path: Path) -> None:
    broke = next(run for run in explored.runs if run["outcome"] == "broke")
    words = shlex.split(broke["replay"])
    assert words[:2] == ["pytest", "--chaos-explore"]
    replayed = run_pytest(copy_project(tmp_path), *words[1:])
    (run,) = replayed.runs
    assert (run["nodeid"], run["outcome"], run["message"]) == (
        broke["nodeid"],
        "broke",
        broke["message"],
    )
    assert "1 failed" in replayed.output and "baseline" not in replayed.output
    assert replayed.returncode == 1


def test_with_a_gate_that_holds_broken_runs_fail_nothing(explored: Session, tmp_path: Path) -> None:
    broke = next(run for run in explored.runs if run["outcome"] == "broke")
    held = next(run for run in explored.runs if run["outcome"] == "held")
    words = shlex.split(broke["replay"])[1:-1]
    gated = run_pytest(
        copy_project(tmp_path), *words, "--chaos-explore-min", "50", broke["nodeid"], held["nodeid"]
    )
    assert {run["outcome"] for run in gated.runs} == {"broke", "held"}
    assert gated.summary["explore"]["gate"] == {"min_held": 50.0, "passed": True, "failure": None}
    assert "1 failed, 1 passed" in gated.output
    assert gated.returncode == 0


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    started = Browser(chromium_or_skip(), tmp_path_factory.mktemp("chromium"))
    yield started
    started.close()


def test_the_report_shows_the_matrix_in_chromium(explored: Session, browser: Browser) -> None:
    url = (explored.report / "report.html").as_uri()
    page = browser.open(url)
    assert page.errors == [] and page.failed == [] and page.requests == [url]
    explore = explored.summary["explore"]
    assert page.evaluate("document.getElementById('held-share').textContent") == (
        f"{explore['held_share']:g}%"
    )
    table = (
        "[...document.querySelectorAll('.explored')].find(test =>"
        " test.querySelector('h3').textContent.endsWith('test_stock_is_counted'))"
        ".querySelector('table.matrix')"
    )
    rows = page.evaluate(
        f"[...{table}.querySelectorAll('tbody tr')].map(row =>"
        " [row.querySelector('th').textContent,"
        "  [...row.querySelectorAll('td')].map(td => [td.className, td.textContent])])"
    )
    headers = page.evaluate(
        f"[...{table}.querySelectorAll('thead th')].map(th => th.textContent).slice(1)"
    )
    cells = {
        (dependency, header): (css, text)
        for dependency, row in rows
        for header, (css, text) in zip(headers, row, strict=True)
        if text
    }
    for (kind, dependency, fault), outcome in singles(explored, "test_stock_is_counted").items():
        css, _ = cells[(f"{kind} {dependency}", fault)]
        assert f"o-{outcome.replace(' ', '-')}" in css.split()
    assert cells[("link primary", "blackhole")][1] == "…"
    # every broken or hung run links to its account, whose button copies its command
    links, resolve, title, copied = page.evaluate(
        "const links = [...document.querySelectorAll('a[href^=\"#run-\"]')];"
        "const run = [...document.querySelectorAll('.run')].find(r => r.querySelector('.o-broke'));"
        "run.querySelector('button.copy').click();"
        "[links.length, links.every(a => document.querySelector(a.getAttribute('href'))),"
        " run.querySelector('h4').textContent, window.getSelection().toString()]"
    )
    problems = [run for run in explored.runs if run["outcome"] in ("broke", "hung")]
    assert (links, resolve) == (len(problems), True)
    broke = next(run for run in problems if title.endswith(run["nodeid"]))
    assert broke["outcome"] == "broke" and copied == broke["replay"]
    assert page.errors == []
    shot = page.screenshot()
    assert shot.startswith(b"\x89PNG\r\n\x1a\n") and len(shot) > 20_000
