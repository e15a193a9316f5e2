"""Secrets out of the report of a test that used pytest-chaos: its exception's message (what
the terminal, JUnit XML and Allure show of it), every text of the failure's representation
(source lines, messages, arguments, locals), and the report's sections (captured output,
service logs). See :mod:`pytest_chaos.core.redaction`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pytest_chaos.core.redaction import redact_text


def redact_exception(error: BaseException) -> None:
    """Redact the string arguments of ``error`` (its message, for most exceptions)."""
    redacted = tuple(redact_text(arg) if isinstance(arg, str) else arg for arg in error.args)
    if redacted != error.args:
        error.args = redacted


def redact_report(report: pytest.TestReport) -> None:
    """Redact the failure's representation, kept as it is built (pytest's terminal
    representations are dataclasses of strings and lists), and the sections."""
    report.longrepr = _redacted(report.longrepr)
    report.sections = [(title, redact_text(content)) for title, content in report.sections]


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        value[:] = [_redacted(item) for item in value]
        return value
    if isinstance(value, tuple):
        return tuple(_redacted(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            object.__setattr__(value, field.name, _redacted(getattr(value, field.name)))
    return value
