"""Evidence of a chaos session: each test's result, the resilience score and its gates,
and the reports people read (terminal table, summary.json, report.html, JUnit properties,
Allure attachments, GitHub's job summary)."""

from __future__ import annotations

from pytest_chaos.report.results import ChaosResult
from pytest_chaos.report.score import Gates, Score

__all__ = ["ChaosResult", "Gates", "Score"]
