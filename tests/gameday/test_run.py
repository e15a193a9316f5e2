"""Game days end to end: real pytest processes running real experiments (on the embedded
proxy, or with action faults), the halt conditions, the history and the reports."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_chaos.cli import main
from pytest_chaos.gameday import GameDayError, draw_seeds, load, run

from ..experiment.lab import SHOP_APP
from ..servers import isolate_chaos_env
from . import SHOP_SUITE, SWITCH_SUITE, check_html, plan_text, write_plan


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)


@pytest.fixture
def switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The switch suite in ``tmp_path``; returns the folder its faults leave marks in."""
    (tmp_path / "test_switch.py").write_text(SWITCH_SUITE)
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv("SWITCH_MARKS", str(marks))
    return marks


def test_two_game_days_report_and_extend_the_history(tmp_path: Path) -> None:
    """The proof: a plan of two repetitions runs end to end through the command line,
    writes both reports and the history; a second game day extends the history and the
    chart shows both."""
    (tmp_path / "test_shop.py").write_text(SHOP_SUITE)
    (tmp_path / "shop_app.py").write_text(SHOP_APP)
    path = write_plan(tmp_path, plan_text(suite="test_shop.py", repetitions=2))
    command = [sys.executable, "-m", "pytest_chaos.cli", "gameday", "run", str(path)]

    first = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert first.returncode == 1, first.stdout + first.stderr  # the naive shop broke
    assert "repetition 2/2" in first.stdout
    out = tmp_path / "gameday-reports"
    runs = json.loads((out / "history.json").read_text())["runs"]
    assert len(runs) == 1
    (record,) = runs
    seeds = [repetition["seed"] for repetition in record["repetitions"]]
    assert seeds == draw_seeds(load(path), 1)
    assert len(set(seeds)) == 2
    assert record["status"] == "broke"
    assert record["score"] is not None and 0 < record["score"] < 100
    for repetition in record["repetitions"]:
        summary = json.loads((out / repetition["directory"] / "summary.json").read_text())
        assert summary["seed"] == repetition["seed"]  # the seed given is the seed used
        assert summary["dry_run"] is False
        assert repetition["exit_code"] == 1
        assert f"--chaos-seed {repetition['seed']}" in repetition["replay"]

    markdown = (out / "gameday.md").read_text()
    assert markdown == (out / f"gameday-{record['id']}.md").read_text()
    held = _section(markdown, "What held")
    broke = _section(markdown, "What broke")
    assert "test_orders[resilient]" in held and "test_orders[naive]" not in held
    assert "test_orders[naive]" in broke and "test_orders[resilient]" not in broke
    assert "timeout of stock (ms=0) from 0.2 s for 1 s" in _section(markdown, "What was tried")
    for seed in seeds:
        assert f"pytest --chaos-seed {seed} 'test_shop.py::test_orders[naive]'" in broke
    actions = _section(markdown, "Action items")
    assert (
        "- [ ] 'orders answer while the stock service hangs' (test_shop.py::test_orders[naive])"
        in actions
    )
    assert "Owner: alice@example.com, bob@example.com" in actions
    assert "Runbook: https://wiki.example.com/runbooks/checkout" in actions
    observations = _section(markdown, "Observations")
    assert "deviated in 2 of 2 repetitions" in observations
    assert "### Notes" in observations
    html = (out / "gameday.html").read_text()
    check_html(html)
    assert html.count("<circle") == 1

    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stdout + second.stderr
    runs = json.loads((out / "history.json").read_text())["runs"]
    assert runs[0] == record  # appended, the first run untouched
    new_seeds = [repetition["seed"] for repetition in runs[1]["repetitions"]]
    assert new_seeds == draw_seeds(load(path), 2) and not set(new_seeds) & set(seeds)
    html = (out / "gameday.html").read_text()
    check_html(html)
    for run_ in runs:
        assert f'data-run="{run_["id"]}"' in html
        assert f'data-run="{run_["id"]}"' in (out / "score.svg").read_text()
    assert (out / f"gameday-{record['id']}.html").exists()  # the first report is kept
    assert "from the previous game day" in _section(
        (out / "gameday.md").read_text(), "Observations"
    )


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_failing_halt_probe_stops_everything(
    tmp_path: Path, switch: Path, monkeypatch: pytest.MonkeyPatch, sigint: str
) -> None:
    """The fault takes the watched service down; the probe notices, the repetition gets
    SIGINT and rolls its fault back, and no further repetition starts. Also when the game
    day itself ignores SIGINT, as a command started with ``nohup ... &`` does: its pytest
    gets default signal dispositions all the same."""
    with sigint_as(signal.SIG_IGN if sigint == "ignored" else signal.default_int_handler):
        day, health = halted_by_probe(tmp_path, monkeypatch)

    assert day.exit_code == 1
    assert day.record["status"] == "halted"
    assert day.record["halt"] is not None
    assert day.record["halt"].startswith(f"halt probe {health} failed: ")  # refused or reset
    assert "during repetition 1" in day.record["halt"]
    assert [r["number"] for r in day.record["repetitions"]] == [1]
    assert day.record["repetitions"][0]["exit_code"] == 2  # interrupted, as by Ctrl-C
    assert (switch / "applied").exists()
    assert (switch / "undone").exists()  # SIGINT let the experiment roll its fault back
    markdown = day.markdown.read_text()
    assert "The game day halted: halt probe" in _section(markdown, "Observations")
    assert "Find out why the game day halted" in _section(markdown, "Action items")
    assert "1 of 3 planned repetitions ran" in markdown


@contextmanager
def sigint_as(handler: Any) -> Iterator[None]:
    """This process's SIGINT handling, for the block (children inherit an ignored SIGINT)."""
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def halted_by_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """A game day of three repetitions of a 60 s experiment whose fault takes the halt
    probe's service down; the game day and the probe's URL."""
    with health_server() as (health, stop_url):
        monkeypatch.setenv("SWITCH_STOP_URL", stop_url)
        monkeypatch.setenv("SWITCH_HOLD_S", "60")
        monkeypatch.setenv("SWITCH_RESILIENT", "1")
        halt = f'[halt]\ngrace_s = 20\n[[halt.probe]]\nurl = "{health}"\nevery_s = 0.2\n'
        plan = load(
            write_plan(tmp_path, plan_text(suite="test_switch.py", repetitions=3, extra=halt))
        )
        return run(plan), health


def test_a_failing_halt_probe_stops_the_game_day_before_it_starts(
    tmp_path: Path, switch: Path
) -> None:
    with health_server() as (health, stop_url):
        httpx.get(stop_url, timeout=5)
        halt = f'[[halt.probe]]\nurl = "{health}"\n'
        day = run(load(write_plan(tmp_path, plan_text(suite="test_switch.py", extra=halt))))
    assert day.record["status"] == "halted"
    assert day.record["halt"] is not None and "before the first repetition" in day.record["halt"]
    assert day.record["repetitions"] == []
    assert not (switch / "applied").exists()


def test_a_low_score_halts_after_the_repetition(tmp_path: Path, switch: Path) -> None:
    extra = "[halt]\nmin_score = 90\n"
    day = run(
        load(write_plan(tmp_path, plan_text(suite="test_switch.py", repetitions=3, extra=extra)))
    )
    assert day.record["status"] == "halted"
    score = day.record["repetitions"][0]["score"]
    assert score is not None and score < 90
    assert day.record["halt"] == f"repetition 1 scored {score:g}, below min_score = 90"
    assert len(day.record["repetitions"]) == 1
    assert day.record["repetitions"][0]["totals"]["deviated"] == 1  # type: ignore[index]


def test_max_duration_stops_a_long_repetition(
    tmp_path: Path, switch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit is well past the inner pytest's start-up (a second or two, more on a busy
    machine) and far short of its 60 s experiment: it strikes while the fault is on, and
    the SIGINT it sends lets the experiment roll the fault back."""
    monkeypatch.setenv("SWITCH_HOLD_S", "60")
    monkeypatch.setenv("SWITCH_RESILIENT", "1")
    extra = "[halt]\nmax_duration_s = 8\n"
    day = run(
        load(write_plan(tmp_path, plan_text(suite="test_switch.py", repetitions=2, extra=extra)))
    )
    assert day.record["halt"] == (
        "the game day ran longer than max_duration_s = 8 s (during repetition 1)"
    )
    assert (switch / "applied").exists(), "the limit struck before the fault was applied"
    assert (switch / "undone").exists()


def test_a_dry_run_rehearses_without_faults(tmp_path: Path, switch: Path) -> None:
    path = write_plan(tmp_path, plan_text(suite="test_switch.py"))
    assert (
        main(["gameday", "run", str(path), "--dry-run", "--out", str(tmp_path / "rehearsal")]) == 0
    )
    out = tmp_path / "rehearsal"
    (record,) = json.loads((out / "history.json").read_text())["runs"]
    assert record["dry_run"] is True and record["status"] == "held"
    repetition = record["repetitions"][0]
    assert json.loads((out / repetition["directory"] / "summary.json").read_text())["dry_run"]
    assert re.search(
        r"chaos: seed=\d+ toxiproxy=embedded dry-run",
        (out / repetition["directory"] / "pytest.log").read_text(),
    )
    assert not (switch / "applied").exists()  # the fault was recorded, not applied
    markdown = (out / "gameday.md").read_text()
    assert "A rehearsal (--dry-run)" in markdown
    assert "no scored game day yet" in (out / "score.svg").read_text()


def test_a_bad_marker_expression_stops_at_the_first_repetition(
    tmp_path: Path, switch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_plan(
        tmp_path, plan_text(suite="test_switch.py", repetitions=3, markers="chaos and (")
    )
    assert main(["gameday", "run", str(path)]) == 2
    error = capsys.readouterr().err
    assert "the suite did not run: pytest exited 4 (usage error)" in error
    assert "-m" in error  # pytest's own complaint about the expression, from its log
    assert not (tmp_path / "gameday-reports" / "history.json").exists()


def test_a_corrupted_history_stops_before_anything_runs(tmp_path: Path, switch: Path) -> None:
    out = tmp_path / "gameday-reports"
    out.mkdir()
    (out / "history.json").write_text('{"format": 1, "runs": [')
    with pytest.raises(GameDayError, match=r"history.json is not valid JSON .*move it aside"):
        run(load(write_plan(tmp_path, plan_text(suite="test_switch.py"))))
    assert not (out / "runs").exists()


def test_repetition_seeds_are_fresh_and_replayable(tmp_path: Path) -> None:
    (tmp_path / "test_switch.py").write_text(SWITCH_SUITE)
    seeded = load(write_plan(tmp_path, plan_text(suite="test_switch.py", repetitions=4)))
    assert draw_seeds(seeded, 1) == draw_seeds(seeded, 1)
    assert len(set(draw_seeds(seeded, 1) + draw_seeds(seeded, 2))) == 8
    unseeded = load(
        write_plan(
            tmp_path, plan_text(suite="test_switch.py", repetitions=4, seed=None), "random.toml"
        )
    )
    assert draw_seeds(unseeded, 1) != draw_seeds(unseeded, 1)


@contextmanager
def health_server() -> Iterator[tuple[str, str]]:
    """A loopback service answering 200 on ``/health`` until someone calls ``/stop``, which
    shuts it down; yields both URLs."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            if self.path == "/stop":
                threading.Thread(target=stop).start()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    server.daemon_threads = True
    stopped = threading.Event()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        stopped.set()

    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield f"{base}/health", f"{base}/stop"
    finally:
        if not stopped.is_set():
            stop()


def _section(markdown: str, title: str) -> str:
    """The text of the ``## title`` section of ``markdown``."""
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
