"""The game-day report rendered from constructed records and summaries: every section, the
facts the observations state, the action items, the chart, and well-formed HTML."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.gameday import Plan, RunRecord, load
from pytest_chaos.gameday.chart import score_chart
from pytest_chaos.gameday.render import findings, html, markdown

from ..report.browser import Browser, chromium_or_skip
from . import check_html, write_plan


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return load(
        write_plan(
            tmp_path,
            """
[gameday]
name = "checkout <resilience>"
description = "Does checkout survive its dependencies?"
owners = ["alice@example.com"]
runbooks = ["https://wiki.example.com/runbooks/checkout"]
repetitions = 3
[suite]
args = ["tests/chaos"]
markers = "chaos"
""",
        )
    )


def result(nodeid: str, verdict: str, seed: int, **extra: Any) -> dict[str, Any]:
    return {
        "nodeid": nodeid,
        "title": extra.pop("title", nodeid.split("::")[-1]),
        "verdict": verdict,
        "weight": 3,
        "seed": seed,
        "replay": f"pytest --chaos-seed {seed} {nodeid}",
        "faults": ["timeout of stock (ms=0) from 0.5 s for 1.5 s"],
        "checks": {"passed": 4, "total": 6},
        "success_ratio": 0.667,
        "duration_s": 4.2,
        "tags": ["network"],
        "message": None
        if verdict == "passed"
        else f"chaos experiment {nodeid} {verdict}\n  at t+1.00 s",
        "journals": [],
        **extra,
    }


def summary(
    seed: int, score: float, results: list[dict[str, Any]], failures: tuple[str, ...] = ()
) -> dict[str, Any]:
    totals = {
        "tests": len(results),
        "passed": 0,
        "deviated": 0,
        "halted": 0,
        "failed": 0,
        "error": 0,
        "skipped": 0,
    }
    for entry in results:
        totals[entry["verdict"]] = totals.get(entry["verdict"], 0) + 1
    return {
        "format": 1,
        "created": "2026-11-29T04:10:00+00:00",
        "seed": seed,
        "dry_run": False,
        "score": score,
        "gates": {
            "min_score": 80.0,
            "max_deviated": None,
            "passed": not failures,
            "failures": list(failures),
        },
        "totals": totals,
        "results": results,
    }


SUMMARIES = [
    summary(
        111,
        72.5,
        [
            result("test_shop.py::test_naive", "deviated", 111, title="a naive shop <hangs>"),
            result("test_shop.py::test_cache", "passed", 111),
            result("test_shop.py::test_flaky", "deviated", 111),
        ],
        ("score 72.5 < 80 (--chaos-min-score)",),
    ),
    summary(
        222,
        80.0,
        [
            result("test_shop.py::test_naive", "deviated", 222, title="a naive shop <hangs>"),
            result("test_shop.py::test_cache", "passed", 222),
            result("test_shop.py::test_flaky", "passed", 222),
        ],
    ),
]


def run_record(run_id: str, score: float | None, **changes: Any) -> RunRecord:
    record: RunRecord = {
        "id": run_id,
        "plan": "checkout <resilience>",
        "started": f"2026-11-{run_id}T09:00:00+00:00",
        "finished": f"2026-11-{run_id}T09:05:00+00:00",
        "dry_run": False,
        "status": "broke",
        "score": score,
        "halt": None,
        "report": f"gameday-{run_id}.html",
        "repetitions": [
            {
                "number": number,
                "seed": seed,
                "exit_code": 1,
                "score": part["score"],
                "totals": part["totals"],
                "duration_s": 5.0,
                "directory": f"runs/{run_id}/repetition-{number}",
                "replay": f"cd /suite && pytest tests/chaos -m chaos --chaos-seed {seed}",
            }
            for number, (seed, part) in enumerate(zip((111, 222), SUMMARIES, strict=True), 1)
        ],
    }
    record.update(changes)  # type: ignore[typeddict-item]
    return record


HISTORY = [
    run_record("22", 90.0, status="held"),
    run_record("23", 60.0, dry_run=True),
    run_record("29", 76.2),
]


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_markdown_report_has_every_section(plan: Plan) -> None:
    text = markdown(plan, HISTORY[-1], SUMMARIES, HISTORY)
    assert text.startswith("# Game day: checkout <resilience>\n\nDoes checkout survive")
    assert "| Owners | alice@example.com |" in text
    assert "| Runbooks | https://wiki.example.com/runbooks/checkout |" in text
    assert "| Suite | pytest tests/chaos -m chaos in " in text
    assert "| Repetitions | 2 of 3 ran |" in text
    tried = section(text, "What was tried")
    assert tried.count("timeout of stock (ms=0) from 0.5 s for 1.5 s") == 3
    assert "1: deviated, 2: passed" in tried  # the flaky one
    held = section(text, "What held")
    assert "test_cache" in held and "test_naive" not in held and "test_flaky" not in held
    broke = section(text, "What broke")
    assert "### a naive shop <hangs>" in broke
    replay = f"cd {plan.suite.directory} && pytest --chaos-seed 222 test_shop.py::test_naive"
    assert f"replay: `{replay}`" in broke
    assert "chaos experiment test_shop.py::test_naive deviated" in broke
    assert "test_cache" not in broke
    assert "![score over time](score.svg)" in section(text, "Score over time")


def test_the_observations_state_the_facts(plan: Plan) -> None:
    said = findings(plan, HISTORY[-1], SUMMARIES, HISTORY).observations
    assert "2 of 3 planned repetitions ran." in said
    assert any(
        line.startswith(
            "Repetition 1 (seed 111, 5 s): score 72.5; 3 chaos test(s): 1 passed, 2 deviated"
        )
        for line in said
    )
    assert (
        "'a naive shop <hangs>' deviated in 2 of 2 repetitions, every time: not the luck of a seed."
        in said
    )
    assert (
        "'test_flaky' deviated in 1 of 2 repetitions, only with seed(s) 111: it depends on timing or the seed."
        in said
    )
    assert "Gate failed: score 72.5 < 80 (--chaos-min-score)." in said
    # compared with the last real game day, not the dry run between
    assert (
        "Score 76.2, down 13.8 from the previous game day (90 on 2026-11-22T09:00:00+00:00)."
        in said
    )


def test_one_action_item_per_broken_test_with_owner_and_runbook(plan: Plan) -> None:
    text = markdown(plan, HISTORY[-1], SUMMARIES, HISTORY)
    actions = section(text, "Action items")
    items = re.findall(r"^- \[ \] .*$", actions, re.M)
    assert len(items) == 2
    assert items[0].startswith(
        "- [ ] 'a naive shop <hangs>' (test_shop.py::test_naive) deviated in repetition(s) 1, 2"
    )
    assert items[1].startswith(
        "- [ ] 'test_flaky' (test_shop.py::test_flaky) deviated in repetition(s) 1"
    )
    assert all(item.endswith("Owner: alice@example.com.") for item in items)
    assert actions.count("Runbook: https://wiki.example.com/runbooks/checkout") == 2
    notes = section(text, "Observations")
    assert "### Notes" in notes and "alerts that fired" in notes


def test_a_halt_and_a_broken_repetition_become_observations_and_actions(plan: Plan) -> None:
    halted = run_record(
        "29",
        72.5,
        status="halted",
        halt="halt probe http://127.0.0.1:9/health answered 503, expected 200 (during repetition 2)",
    )
    halted["repetitions"][1]["exit_code"] = 2  # the halt interrupted it
    found = findings(plan, halted, [SUMMARIES[0], None], HISTORY)
    assert found.observations[0].startswith(
        "The game day halted: halt probe http://127.0.0.1:9/health answered 503"
    )
    assert (
        "Repetition 2 (seed 222, 5 s): pytest exited 2 (interrupted) without a summary; "
        "see runs/29/repetition-2/pytest.log." in found.observations
    )
    texts = [action.text for action in found.actions]
    assert texts[0].startswith("Find out why the game day halted: halt probe")
    assert not any("did not run properly" in text for text in texts)  # the halt says it

    crashed = run_record("29", 72.5)
    crashed["repetitions"][1]["exit_code"] = 3
    found = findings(plan, crashed, [SUMMARIES[0], None], HISTORY)
    (action,) = [a for a in found.actions if "did not run properly" in a.text]
    assert action.text.startswith(
        "Repetition 2 did not run properly: pytest exited 3 (internal error)"
    )
    assert action.replay == "cd /suite && pytest tests/chaos -m chaos --chaos-seed 222"


def test_a_run_where_everything_held_says_so(plan: Plan) -> None:
    passing = [summary(111, 100.0, [result("test_shop.py::test_cache", "passed", 111)])]
    record = run_record("29", 100.0, status="held")
    record["repetitions"] = record["repetitions"][:1]
    text = markdown(plan, record, passing, [record])
    assert "Nothing broke." in section(text, "What broke")
    assert "None: everything held." in section(text, "Action items")


def test_the_html_report_is_well_formed_self_contained_and_escaped(plan: Plan) -> None:
    page = html(plan, HISTORY[-1], SUMMARIES, HISTORY)
    tags = check_html(page)
    assert "script" not in tags and "link" not in tags and "img" not in tags  # nothing fetched
    assert "<title>Game day: checkout &lt;resilience&gt;</title>" in page
    assert "a naive shop &lt;hangs&gt;" in page and "<hangs>" not in page
    for anchor in ("tried", "held", "broke", "observations", "actions", "score"):
        assert f'<h2 id="{anchor}">' in page
    assert '<a href="https://wiki.example.com/runbooks/checkout">' in page
    assert '<a href="runs/29/repetition-1/report.html">' in page
    assert page.count("<svg") == 1 and 'class="notes"' in page


def test_the_chart_plots_the_scored_real_game_days(plan: Plan) -> None:
    chart = score_chart(HISTORY)
    assert re.findall(r'data-run="(\w+)"', chart) == ["22", "29"]  # the dry run is left out
    assert chart.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', chart)]
    assert ys[0] < ys[1]  # 90 is drawn above 76.2
    check_html("<!DOCTYPE html><html><body>" + chart + "</body></html>")
    assert "no scored game day yet" in score_chart([HISTORY[1]])
    unscored = copy.deepcopy(HISTORY[0])
    unscored["score"] = None
    assert "<circle" not in score_chart([unscored])


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    started = Browser(chromium_or_skip(), tmp_path_factory.mktemp("chromium"))
    yield started
    started.close()


def test_the_html_report_renders_in_chromium_offline(
    plan: Plan, browser: Browser, tmp_path: Path
) -> None:
    page_file = tmp_path / "gameday.html"
    page_file.write_text(html(plan, HISTORY[-1], SUMMARIES, HISTORY))
    url = page_file.as_uri()
    page = browser.open(url)
    assert page.errors == [] and page.failed == []
    assert page.requests == [url]  # the page itself, nothing else
    drawn = page.evaluate(
        "(() => { const svg = document.querySelector('#score + svg');"
        " const box = svg.getBoundingClientRect();"
        " return [svg.querySelectorAll('circle').length, box.width, box.height,"
        " [...document.querySelectorAll('h2')].map(h => h.id)]; })()"
    )
    assert drawn == [
        2,
        720,
        260,
        ["repetitions", "tried", "held", "broke", "observations", "actions", "score"],
    ]

    chart = tmp_path / "score.svg"
    chart.write_text(score_chart(HISTORY))
    alone = browser.open(chart.as_uri())
    assert alone.errors == [] and alone.failed == []
    assert alone.evaluate("document.documentElement.localName") == "svg"
