"""The history file: appended to, never rewritten, and refused with a clear error when it
cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_chaos.gameday import HistoryError, RunRecord
from pytest_chaos.gameday.history import FILE, append, load


def record(run_id: str, score: float | None = 80.0) -> RunRecord:
    return {
        "id": run_id,
        "plan": "checkout resilience",
        "started": "2026-11-29T04:10:00+00:00",
        "finished": "2026-11-29T04:12:00+00:00",
        "dry_run": False,
        "status": "held",
        "score": score,
        "halt": None,
        "report": f"gameday-{run_id}.html",
        "repetitions": [
            {
                "number": 1,
                "seed": 1234,
                "exit_code": 0,
                "score": score,
                "totals": {"tests": 1, "passed": 1},
                "duration_s": 4.2,
                "directory": f"runs/{run_id}/repetition-1",
                "replay": "cd /suite && pytest --chaos-seed 1234",
            }
        ],
    }


def test_no_history_yet_is_empty(tmp_path: Path) -> None:
    assert load(tmp_path) == []
    assert load(tmp_path / "not-created") == []


def test_runs_are_appended_and_earlier_ones_kept_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    assert append(folder, record("first")) == [record("first")]
    written = (folder / FILE).read_text()
    assert append(folder, record("second", None)) == [record("first"), record("second", None)]
    assert load(folder) == [record("first"), record("second", None)]
    data = json.loads((folder / FILE).read_text())
    assert data["format"] == 1
    assert json.loads(written)["runs"][0] == data["runs"][0]
    assert [path.name for path in folder.iterdir()] == [FILE]  # no temporary file left


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"format": 1, "runs": [', "is not valid JSON"),
        ("[]", "has format 'list'; this version reads format 1"),
        ('{"format": 2, "runs": []}', "has format 2; this version reads format 1"),
        ('{"format": 1}', "has no list of runs"),
        ('{"format": 1, "runs": [3]}', "run #1 is 3, not an object"),
        ('{"format": 1, "runs": [{"id": "x"}]}', "run #1 has no 'plan'"),
    ],
)
def test_a_corrupted_history_is_refused_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / FILE).write_text(text)
    with pytest.raises(HistoryError) as raised:
        load(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / FILE} {problem}")
    assert "move it aside to start a new history" in message


def test_a_run_with_a_wrong_field_type_is_refused(tmp_path: Path) -> None:
    bad = record("x")
    bad["repetitions"][0]["seed"] = "1234"  # type: ignore[typeddict-item]
    (tmp_path / FILE).write_text(json.dumps({"format": 1, "runs": [record("ok"), bad]}))
    with pytest.raises(HistoryError, match=r"run #2 repetition 1: has seed = '1234'"):
        load(tmp_path)


def test_a_corrupted_history_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text("{not json")
    with pytest.raises(HistoryError):
        append(tmp_path, record("new"))
    assert (tmp_path / FILE).read_text() == "{not json"
