"""How an experiment's outcome shows in pytest: a system that was not in steady state before
the faults makes the test *error* (it proves nothing either way), not fail."""

from __future__ import annotations

import pytest

#: The user property that marks such a report; user properties survive pytest-xdist.
NOT_STEADY = ("chaos_outcome", "not in steady state before chaos")


def mark(report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """Mark the report of a call that ended with NotSteady."""
    if call.excinfo is None or report.when != "call":
        return
    from pytest_chaos.experiment import NotSteady

    if isinstance(call.excinfo.value, NotSteady):
        report.user_properties.append(NOT_STEADY)


def status(report: pytest.TestReport | pytest.CollectReport) -> tuple[str, str, str] | None:
    """The terminal's category for a marked report: ``error``, like a broken fixture."""
    if report.failed and NOT_STEADY in getattr(report, "user_properties", ()):
        return "error", "E", "ERROR"
    return None
