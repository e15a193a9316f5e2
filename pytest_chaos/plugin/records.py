"""What one chaos test contributes to the session's evidence: its verdict, weight, seed,
faults and hypothesis checks, built where the test ran and carried on its report (so it
survives pytest-xdist) to the process that scores and reports the session."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest

from pytest_chaos.core.faultlog import FaultRecord
from pytest_chaos.core.redaction import redact_text
from pytest_chaos.plugin import markers
from pytest_chaos.report import results
from pytest_chaos.report.results import ChaosResult, count_checks

FAULTS = pytest.StashKey[list[str]]()
JOURNALS = pytest.StashKey[list[dict[str, Any]]]()


def note_fault(item: pytest.Item | None, fault: FaultRecord) -> None:
    """Remember a fault ``item`` applied, for its row in the reports."""
    if item is not None:
        item.stash.setdefault(FAULTS, []).append(describe_fault(fault))


def note_journal(item: pytest.Item, journal: dict[str, Any]) -> None:
    """Remember an experiment's journal of ``item``."""
    item.stash.setdefault(JOURNALS, []).append(journal)


#: Details a fault's description leaves out: generated names and instance identities
#: (which differ on every run, so the same fault would read as a new one), and defaults.
_UNSAID = {
    "toxic": None,
    "pid": None,
    "pids": None,
    "container": None,
    "stream": "downstream",
    "toxicity": 1.0,
}


def describe_fault(fault: FaultRecord) -> str:
    """``latency on db (latency=100)``: kind, target, and the details that say something."""
    details = ", ".join(
        f"{key}={value}"
        for key, value in fault.details.items()
        if key not in _UNSAID or (_UNSAID[key] is not None and value != _UNSAID[key])
    )
    text = f"{fault.kind} on {fault.target}" + (f" ({details})" if details else "")
    return text + (" [dry run]" if fault.dry_run else "")


def attach(
    item: pytest.Item, report: pytest.TestReport, seed_of: Callable[[pytest.Config], int]
) -> None:
    """Put the result of a chaos test on the report that decides it: the call's, or the
    setup's when setup failed or skipped. Also give JUnit XML its properties. (Called for
    every report of every test: it returns at once for tests that are not chaos tests.)"""
    declared = markers.of(item)
    if declared is None or not _decides(report):
        return
    journals = item.stash.get(JOURNALS, [])
    result = build(item.nodeid, declared, report, seed_of(item.config), journals)
    # an experiment's own account of its faults reads better than the raw records
    scheduled = [
        str(entry["fault"])
        for journal in journals
        for entry in (journal.get("pytest_chaos") or {}).get("timeline") or []
    ]
    result.faults = [
        redact_text(fault) for fault in _unique(scheduled or item.stash.get(FAULTS, []))
    ]
    result.title = None if result.title is None else redact_text(result.title)
    result.message = None if result.message is None else redact_text(result.message)
    setattr(report, results.REPORT_ATTRIBUTE, result.to_json())
    item.user_properties.extend(
        [
            ("chaos_verdict", result.verdict),
            ("chaos_weight", result.weight),
            ("chaos_seed", result.seed),
            ("chaos_faults", "; ".join(result.faults)),
        ]
    )


def _decides(report: pytest.TestReport) -> bool:
    return report.when == "call" or (report.when == "setup" and not report.passed)


def build(
    nodeid: str,
    declared: markers.ChaosMarker,
    report: pytest.TestReport,
    seed: int,
    journals: list[dict[str, Any]],
) -> ChaosResult:
    """The result of one test from its marker, its report and its experiments' journals."""
    verdict = verdict_of(report, journals)
    passed, total = count_checks(journals)
    if verdict == "passed" and total == 0:
        passed = total = 1  # a plain chaos test: its own assertions are the one check
    elif verdict in ("failed", "error", "not steady"):
        # the test broke for a reason its probes did not see (or was never steady): no
        # credit, or a gate would pass a system that never showed it was resilient
        passed, total = 0, max(total, 1)
    ratio = passed / total if total else 0.0
    return ChaosResult(
        nodeid=nodeid,
        verdict=verdict,
        weight=declared.weight,
        seed=seed,
        title=declared.hypothesis or _first_title(journals),
        tags=list(declared.tags),
        checks_passed=passed,
        checks_total=total,
        success_ratio=round(ratio, 4),
        duration_s=round(report.duration, 3),
        message=_message(report) if verdict != "passed" else None,
        journals=list(journals),
    )


def verdict_of(report: pytest.TestReport, journals: Iterable[Mapping[str, Any]]) -> str:
    """passed / deviated / halted / not steady / failed / error / skipped / xfailed."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "passed"
    if report.skipped:
        return "skipped"
    if report.passed:
        return "passed"
    if report.when != "call":
        return "error"
    from pytest_chaos.plugin.outcomes import NOT_STEADY

    if NOT_STEADY in report.user_properties:
        return "not steady"
    journals = list(journals)
    if any(journal.get("status") == "aborted" for journal in journals):
        return "halted"
    if any(journal.get("deviated") for journal in journals):
        return "deviated"
    return "failed"


def _first_title(journals: list[dict[str, Any]]) -> str | None:
    for journal in journals:
        title = (journal.get("experiment") or {}).get("title")
        if title:
            return str(title)
    return None


def _message(report: pytest.TestReport) -> str | None:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    text = getattr(report, "longreprtext", "") or ""
    lines = [line for line in text.splitlines() if line.startswith("E ")]
    if lines:
        return "\n".join(line[1:].strip() for line in lines)
    return text.strip().splitlines()[-1] if text.strip() else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
