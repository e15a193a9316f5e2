"""The journal of an experiment, as Chaos Toolkit keeps one: opened by :func:`new_journal`,
filled by the run with the records below, written by :func:`write_journal` (the one writer,
which redacts secrets) through :func:`dumps` (the one serialiser), and read back by
:func:`read_journal` (reports read its fields leniently: :mod:`pytest_chaos.report.lenient`)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_chaos.core.redaction import redact
from pytest_chaos.core.version import VERSION

if TYPE_CHECKING:
    from pytest_chaos.steady.probes import Probe, ProbeRun

Journal = dict[str, Any]


def new_journal(experiment: dict[str, Any]) -> Journal:
    """A journal opened for ``experiment`` (in Chaos Toolkit's format), as chaostoolkit-lib
    opens one; the run fills it in."""
    return {
        "chaoslib-version": None,
        "pytest-chaos-version": VERSION,
        "platform": platform.platform(),
        "node": platform.node(),
        "experiment": experiment,
        "start": datetime.now(timezone.utc).isoformat(),
        "status": None,
        "deviated": False,
        "steady_states": {"before": None, "after": None, "during": []},
        "run": [],
        "rollbacks": [],
        "pytest_chaos": {"halted": None},
    }


def hypothesis_status(state: dict[str, Any]) -> str:
    """``failed`` if a probe of a hypothesis not met could not run, else ``completed``."""
    ran = all(probe["status"] == "succeeded" for probe in state["probes"])
    return "completed" if ran else "failed"


def run_record(
    activity: dict[str, Any], started: datetime, problem: str | None, output: Any = None
) -> dict[str, Any]:
    ended = datetime.now(timezone.utc)
    record: dict[str, Any] = {
        "activity": activity,
        "output": output,
        "status": "failed" if problem else "succeeded",
        "start": started.isoformat(),
        "end": ended.isoformat(),
        "duration": round((ended - started).total_seconds(), 6),
    }
    if problem:
        record["exception"] = [problem]
    return record


def timed_run(activity: dict[str, Any], step: Callable[[], object]) -> dict[str, Any]:
    started = datetime.now(timezone.utc)
    try:
        output = step()
    except Exception as error:
        return run_record(activity, started, f"{type(error).__name__}: {error}")
    return run_record(activity, started, None, jsonable(output))


def probe_record(probe: Probe, run: ProbeRun) -> dict[str, Any]:
    record = {
        "activity": probe.to_activity(),
        "output": jsonable(run.output),
        "status": "failed" if run.error else "succeeded",
        "start": datetime.fromtimestamp(run.started_at, timezone.utc).isoformat(),
        "end": datetime.fromtimestamp(run.ended_at, timezone.utc).isoformat(),
        "duration": round(run.ended_at - run.started_at, 6),
        "tolerance_met": run.tolerance_met,
    }
    if run.error:
        record["exception"] = [run.error]
    if not run.tolerance_met:
        record["deviation"] = run.deviation or run.error
    return record


def jsonable(value: Any, limit: int = 2000) -> Any:
    """``value`` as JSON can hold it; long texts are cut (a probe's HTTP body)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "..."
    if isinstance(value, dict):
        return {str(k): jsonable(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, limit) for v in value]
    if isinstance(value, (int, float, bool, type(None))):
        return value
    return repr(value)


def write_journal(journal: Journal, path: Path) -> Path:
    """Write ``journal`` to ``path`` (its folder is made if needed) as :func:`dumps` says:
    every journal file of the package is written here, its secrets redacted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(journal), encoding="utf-8")
    return path


def dumps(journal: Mapping[str, Any]) -> str:
    """The journal as JSON text, its secrets redacted: the one serialiser of journals (a
    value JSON cannot hold is written as its ``repr``)."""
    return json.dumps(redact(journal), indent=2, default=repr) + "\n"


def read_journal(path: Path) -> Journal:
    """A journal file as :func:`write_journal` wrote it; a file that holds no JSON object
    raises ValueError naming it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a journal is a JSON object, not {type(data).__name__}")
    return data
