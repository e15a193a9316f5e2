"""The session's evidence on disk (``--chaos-report DIR``): ``summary.json``, every
experiment's journal under ``journals/``, and ``report.html`` rendered from them.

``summary.json`` (``format`` 1) holds the score, the gates, the totals and one entry per
chaos test (and, when tests were explored, an ``explore`` section: the matrix); its ``journals`` are paths relative to DIR, so the folder can be moved, kept
as a CI artifact, and re-rendered with ``pytest-chaos report DIR``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_chaos.core.redaction import redact
from pytest_chaos.experiment.journal import write_journal
from pytest_chaos.report.layout import FORMAT, JOURNALS, SUMMARY
from pytest_chaos.report.results import ChaosResult
from pytest_chaos.report.score import Gates, Score


def summarize(
    score: Score,
    gates: Gates,
    *,
    seed: int,
    dry_run: bool,
    journal_paths: dict[str, list[str]],
    sections: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """The JSON document of a session; ``journal_paths`` maps a nodeid to its journals'
    paths relative to the report folder; ``sections`` are added as they are (``explore``)."""
    failures = gates.failures(score)
    return {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "dry_run": dry_run,
        "score": score.value,
        "gates": {
            "min_score": gates.min_score,
            "max_deviated": gates.max_deviated,
            "passed": not failures,
            "failures": failures,
        },
        "totals": score.totals(),
        "results": [
            _entry(result, journal_paths.get(result.nodeid, [])) for result in score.results
        ],
        **(sections or {}),
    }


def _entry(result: ChaosResult, journals: list[str]) -> dict[str, Any]:
    entry = result.to_json()
    entry.pop("journals")
    passed, total = entry.pop("checks_passed"), entry.pop("checks_total")
    return {
        **entry,
        "checks": {"passed": passed, "total": total},
        "replay": result.replay,
        "journals": journals,
    }


def write(
    folder: Path,
    score: Score,
    gates: Gates,
    *,
    seed: int,
    dry_run: bool,
    sections: Mapping[str, object] | None = None,
) -> Path:
    """Write the summary, the journals and the HTML report into ``folder``; return the
    HTML report's path."""
    journal_folder = folder / JOURNALS
    journal_folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, list[str]] = {}
    for result in score.results:
        name = re.sub(r"[^\w.-]+", "_", result.nodeid).strip("_") or "test"
        for number, journal in enumerate(result.journals, start=1):
            suffix = f"-{number}" if len(result.journals) > 1 else ""
            path = journal_folder / f"{name}{suffix}.json"
            write_journal(journal, path)
            paths.setdefault(result.nodeid, []).append(f"{JOURNALS}/{path.name}")
    document = summarize(
        score, gates, seed=seed, dry_run=dry_run, journal_paths=paths, sections=sections
    )
    (folder / SUMMARY).write_text(json.dumps(redact(document), indent=2) + "\n")
    from pytest_chaos.report import html

    return html.write(folder)
