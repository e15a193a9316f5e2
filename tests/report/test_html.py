"""The HTML report: rendered from a recorded session and from a live one, read back as
HTML, opened in a real headless Chromium, and re-rendered by ``pytest-chaos report DIR``."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.report import command
from pytest_chaos.report.chart import timeline_svg
from pytest_chaos.report.html import ReportError, render, write

from .browser import Browser, Page, chromium_or_skip

DATA = Path(__file__).parent / "data"
VOID = {"meta", "link", "br", "img", "input", "hr", "path", "line", "circle", "rect", "polyline"}


class Outline(HTMLParser):
    """What a page holds: the tags, the ids and their text, and whether every element closes."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: dict[str, str] = {}
        self.open: list[tuple[str, str | None]] = []
        self.unbalanced: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        ident = dict(attrs).get("id")
        if ident is not None:
            self.ids[ident] = ""
        if tag not in VOID:
            self.open.append((tag, ident))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.open or self.open[-1][0] != tag:
            self.unbalanced.append(tag)
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        for _, ident in self.open:
            if ident is not None:
                self.ids[ident] += data


def recorded(tmp_path: Path) -> Path:
    """A copy of the recorded session (summary.json and journals) to render into."""
    return Path(shutil.copytree(DATA / "session", tmp_path / "session"))


def summary_of(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "summary.json").read_text())
    return loaded


# -- rendering ---------------------------------------------------------------------------


def test_the_page_shows_score_gates_table_and_one_section_per_experiment(tmp_path: Path) -> None:
    directory = recorded(tmp_path)
    path = write(directory)
    assert path == directory / "report.html"
    page = path.read_text()
    outline = Outline(page)
    assert outline.unbalanced == [] and outline.open == []
    summary = summary_of(directory)
    results = summary["results"]

    assert outline.ids["score"] == "91.4"
    assert "gates passed" in page
    assert [outline.ids[f"experiment-{n}"] != "" for n in (1, 2, 3)] == [True] * 3
    assert f"experiment-{len(results) + 1}" not in outline.ids
    assert outline.tags.count("svg") == len(results)  # one chart per journal
    assert page.count("<h4>Steady-state checks</h4>") == len(results)
    for number, result in enumerate(results, 1):
        section = outline.ids[f"experiment-{number}"]
        assert result["nodeid"] in section and result["verdict"] in section
        assert result["replay"] in section
    naive = outline.ids["experiment-2"]
    journal = json.loads((directory / results[1]["journals"][0]).read_text())
    assert "Deviations (2)" in naive
    assert journal["pytest_chaos"]["deviations"][0]["explanation"] in naive
    assert "Halted at t+0.76 s: halt order: ReadTimeout" in outline.ids["experiment-3"]


def test_failed_gates_a_missing_journal_and_no_score(tmp_path: Path) -> None:
    summary = summary_of(DATA / "session")
    summary["score"] = 72.5
    summary["gates"] = {
        "min_score": 80.0,
        "max_deviated": None,
        "passed": False,
        "failures": ["score 72.5 < 80 (--chaos-min-score)"],
    }
    outline = Outline(page := render(summary, {}))
    assert outline.ids["score"] == "72.5"
    assert "gates failed" in page and "minimum score 80" in page
    assert "<li>score 72.5 &lt; 80 (--chaos-min-score)</li>" in page
    assert page.count("is missing or unreadable") == 3
    assert "<svg" not in page

    bare = render({"format": 1, "score": None}, {})
    assert Outline(bare).ids["score"] == "—"
    assert "no chaos tests, no score" in bare
    assert "No chaos test ran in this session." in render({"format": 1}, {})


def test_text_from_the_session_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    summary = {
        "format": 1,
        "results": [
            {
                "nodeid": f"test_x.py::test[{evil}]",
                "title": evil,
                "verdict": "not steady",
                "faults": [evil],
                "message": evil,
                "replay": f"pytest '{evil}'",
                "journals": ["j.json"],
            }
        ],
    }
    journal = {"experiment": {"title": evil}, "pytest_chaos": {"deviations": [{"probe": evil}]}}
    page = render(summary, {"j.json": journal})
    assert "<script>alert" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    assert 'class="verdict v-not-steady"' in page
    assert Outline(page).unbalanced == []


@pytest.mark.parametrize(
    "journal",
    [
        {},
        {
            "steady_states": {"before": {"probes": [None, {"activity": None}]}, "during": "x"},
            "pytest_chaos": {
                "timeline": [{"applied_at_s": "x"}, None],
                "load": {"count": "many", "per_second": None},
                "deviations": [{"at_s": None}],
                "halted": {"probe": None},
                "rollouts": [{"name": "canary", "outcome": "promoted"}],
            },
        },
    ],
    ids=["empty", "malformed"],
)
def test_a_journal_with_parts_missing_renders_what_exists(journal: dict[str, Any]) -> None:
    summary = {"format": 1, "results": [{"nodeid": "t.py::t", "journals": ["j.json"]}]}
    page = render(summary, {"j.json": journal})
    outline = Outline(page)
    assert outline.unbalanced == [] and outline.open == []
    assert outline.tags.count("svg") == 1
    assert "t.py::t" in outline.ids["experiment-1"]
    assert "Before the method" in page and "is missing" not in page
    if journal:
        assert "Halted: a halt condition was breached" in page
        assert "1 canary rollout(s)" in page and "promoted" in page


def test_a_journal_outside_the_directory_is_not_read(tmp_path: Path) -> None:
    directory = recorded(tmp_path)
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"experiment": {"title": "SECRET"}}))
    summary = summary_of(directory)
    summary["results"][0]["journals"] = ["../secret.json", str(outside)]
    (directory / "summary.json").write_text(json.dumps(summary))
    page = write(directory).read_text()
    assert "SECRET" not in page
    assert page.count("is missing or unreadable") == 2


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file; run pytest with --chaos-report"),
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object, found list"),
        ('{"format": 2}', "format 2 is not one this version reads (expected 1)"),
        ('{"format": 1, "results": {}}', "'results' must be a list"),
    ],
)
def test_a_bad_summary_is_a_report_error_naming_it(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    if content is not None:
        (tmp_path / "summary.json").write_text(content)
    with pytest.raises(ReportError, match=r"summary\.json: ") as raised:
        write(tmp_path)
    assert str(tmp_path / "summary.json") in str(raised.value)
    assert problem in str(raised.value)
    assert not (tmp_path / "report.html").exists()


# -- pytest-chaos report DIR -------------------------------------------------------------


def run_command(*argv: str) -> int:
    top = argparse.ArgumentParser(prog="pytest-chaos")
    command.add_parser(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(["report", *argv])
    code: int = args.run(args)
    return code


def test_the_report_command_renders_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = recorded(tmp_path)
    assert run_command(str(directory)) == 0
    assert capsys.readouterr().out == f"{directory / 'report.html'}\n"
    assert "experiments.py::test_halted_shop[5]" in (directory / "report.html").read_text()


@pytest.mark.parametrize("name", ["missing", "a-file"])
def test_the_report_command_names_a_bad_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    (tmp_path / "a-file").write_text("")
    assert run_command(str(tmp_path / name)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err
        == f"pytest-chaos report: {tmp_path / name}: not a directory (expected a --chaos-report directory)\n"
    )


# -- a live session, in a browser --------------------------------------------------------


@pytest.fixture(scope="module")
def live_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report directory of a real session of the three experiments in data/."""
    workdir = tmp_path_factory.mktemp("live")
    shutil.copy(DATA / "experiments.py", workdir)
    finished = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"),
            *("--chaos-seed", "1234", "--chaos-report", "report", "experiments.py"),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 1, finished.stdout + finished.stderr  # two tests fail
    return workdir / "report"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    started = Browser(chromium_or_skip(), tmp_path_factory.mktemp("chromium"))
    yield started
    started.close()


def test_a_live_session_writes_a_report_of_every_experiment(live_report: Path) -> None:
    summary = summary_of(live_report)
    outline = Outline((live_report / "report.html").read_text())
    assert [r["verdict"] for r in summary["results"]] == ["passed", "deviated", "halted"]
    assert outline.tags.count("svg") == 3
    for number, result in enumerate(summary["results"], 1):
        assert result["nodeid"] in outline.ids[f"experiment-{number}"]


def test_the_report_renders_in_chromium_offline_and_without_errors(
    live_report: Path, browser: Browser, tmp_path: Path
) -> None:
    url = (live_report / "report.html").as_uri()
    page = browser.open(url)
    assert page.errors == []
    assert page.requests == [url]  # the page itself, nothing else
    assert page.failed == []

    summary = summary_of(live_report)
    assert page.evaluate("document.getElementById('score').textContent") == str(summary["score"])
    boxes = page.evaluate(
        "[...document.querySelectorAll('section.experiment')].map(section => {"
        "  const box = section.querySelector('figure.chart svg').getBoundingClientRect();"
        "  return [section.querySelector('h2').textContent, box.width, box.height]; })"
    )
    assert [title for title, _, _ in boxes] == [
        f"{r['verdict']} {r['nodeid']}" for r in summary["results"]
    ]
    assert all(width > 300 and height > 100 for _, width, height in boxes), boxes

    copied = page.evaluate(
        "document.querySelector('button.copy').click();"
        "[window.getSelection().toString(), document.querySelector('button.copy').textContent]"
    )
    assert copied[0] == summary["results"][0]["replay"]
    assert copied[1] in ("Copied", "Press Ctrl+C")
    assert page.errors == []

    shot = tmp_path / "report.png"
    shot.write_bytes(page.screenshot())
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert shot.stat().st_size > 20_000


def test_the_chart_alone_renders_in_chromium(browser: Browser, tmp_path: Path) -> None:
    """The SVG is attached on its own (to Allure): as a file it is a complete document."""
    journal = json.loads(
        (DATA / "session" / "journals" / "experiments.py_test_naive_shop_5.json").read_text()
    )
    chart = tmp_path / "chart.svg"
    chart.write_text(timeline_svg(journal))
    page = browser.open(chart.as_uri())
    assert page.errors == [] and page.failed == []
    size = page.evaluate(
        "[document.documentElement.localName, document.documentElement.getBBox().width,"
        " document.querySelectorAll('polyline').length]"
    )
    assert size == ["svg", 760, 3]


def test_the_browser_helper_sees_errors_and_requests(browser: Browser, tmp_path: Path) -> None:
    """The checks above can fail: a script error, a console error and a request to the
    network are all caught (the request fails: nothing listens on port 9)."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><img src="http://127.0.0.1:9/logo.png">'
        '<script>console.error("bad data"); notAFunction();</script>'
    )
    page: Page = browser.open(broken.as_uri())
    assert "console.error: bad data" in page.errors
    assert any("notAFunction is not defined" in error for error in page.errors)
    assert page.requests == [broken.as_uri(), "http://127.0.0.1:9/logo.png"]
    assert len(page.failed) == 1

    report = tmp_path / "fetching.html"
    report.write_text(
        render(summary_of(DATA / "session"), {}).replace(
            "</main>", '<img src="http://127.0.0.1:9/tracker.png"></main>'
        )
    )
    refused = browser.open(report.as_uri())  # the page's own policy refuses the fetch
    assert [error for error in refused.errors if "Content Security Policy" in error], refused


def test_without_chromium_the_browser_tests_skip_unless_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PYTEST_CHAOS_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found"):
        chromium_or_skip()
    monkeypatch.setenv("PYTEST_CHAOS_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="PYTEST_CHAOS_REQUIRE_BROWSER=1 requires"):
        chromium_or_skip()
