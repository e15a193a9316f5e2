"""The history of a plan's game days: ``history.json`` in the output folder, one record per
run appended after each game day, never rewritten, so the score can be followed over time.

A file that cannot be read as a history stops the game day before it starts, naming the
file and the problem: a run that silently started a new history would lose the old one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypedDict

from pytest_chaos.core.errors import ChaosError

FILE = "history.json"
FORMAT = 1


class HistoryError(ChaosError, ValueError):
    """A history file that is not one this version can read."""


class RepetitionRecord(TypedDict):
    """One pytest run of a game day: its seed (replay it with ``replay``), how pytest ended,
    and the summary's score and totals (None when it wrote none)."""

    number: int
    seed: int
    exit_code: int | None
    score: float | None
    totals: dict[str, int] | None
    duration_s: float
    directory: str
    replay: str


class RunRecord(TypedDict):
    """One game day: when, against what, how it ended (``held``, ``broke``, ``halted``),
    why it halted, its score (the mean of its repetitions'), and where its report is."""

    id: str
    plan: str
    started: str
    finished: str
    dry_run: bool
    status: str
    score: float | None
    halt: str | None
    report: str
    repetitions: list[RepetitionRecord]


def load(folder: Path) -> list[RunRecord]:
    """The runs recorded in ``folder``, oldest first; none when there is no history yet."""
    path = folder / FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise _broken(path, f"cannot be read ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _broken(path, f"is not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise _broken(path, f"has format {found!r}; this version reads format {FORMAT}")
    runs = data.get("runs")
    if not isinstance(runs, list):
        raise _broken(path, "has no list of runs")
    for number, run in enumerate(runs, 1):
        problem = _problem(run)
        if problem is not None:
            raise _broken(path, f"run #{number} {problem}")
    return runs


def append(folder: Path, run: RunRecord) -> list[RunRecord]:
    """Add ``run`` to the history in ``folder`` (written whole to a temporary file, then
    renamed over the old one, so a crash leaves the old history intact); every run."""
    runs = [*load(folder), run]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    temporary = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"format": FORMAT, "runs": runs}, indent=2) + "\n")
    os.replace(temporary, path)
    return runs


_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "plan": (str,),
    "started": (str,),
    "finished": (str,),
    "dry_run": (bool,),
    "status": (str,),
    "score": (int, float, type(None)),
    "halt": (str, type(None)),
    "report": (str,),
    "repetitions": (list,),
}
_REPETITION_FIELDS: dict[str, tuple[type, ...]] = {
    "number": (int,),
    "seed": (int,),
    "exit_code": (int, type(None)),
    "score": (int, float, type(None)),
    "totals": (dict, type(None)),
    "duration_s": (int, float),
    "directory": (str,),
    "replay": (str,),
}


def _problem(run: Any) -> str | None:
    """What is wrong with one recorded run, or None."""
    if not isinstance(run, dict):
        return f"is {run!r}, not an object"
    problem = _fields(run, _FIELDS)
    if problem is not None:
        return problem
    for repetition in run["repetitions"]:
        if not isinstance(repetition, dict):
            return f"has repetition {repetition!r}, not an object"
        problem = _fields(repetition, _REPETITION_FIELDS)
        if problem is not None:
            return f"repetition {repetition.get('number', '?')}: {problem}"
    return None


def _fields(record: dict[str, Any], fields: dict[str, tuple[type, ...]]) -> str | None:
    for key, types in fields.items():
        if key not in record:
            return f"has no {key!r}"
        value = record[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"has {key} = {value!r}"
    return None


def _broken(path: Path, problem: str) -> HistoryError:
    return HistoryError(
        f"{path} {problem}: repair it, or move it aside to start a new history (nothing was run)"
    )
