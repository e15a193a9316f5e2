"""Extra sections for a failing test's report, supplied by the chaos fixtures it used: the
last log lines of its services, the faults the monkey injected; secrets redacted."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, final

import pytest

from pytest_chaos.core.redaction import redact_text

#: A function giving ``(title, text)`` sections, asked only when the test fails.
SectionSource = Callable[[], list[tuple[str, str]]]

SOURCES = pytest.StashKey[list[SectionSource]]()


def add(item: pytest.Item, source: SectionSource) -> None:
    """Have ``source`` add its sections to ``item``'s report if the test fails. The hook is
    registered on first use, so sessions without chaos fixtures pay nothing for it."""
    item.stash.setdefault(SOURCES, []).append(source)
    manager = item.config.pluginmanager
    if not manager.has_plugin(FailureSections.name):
        manager.register(FailureSections(), FailureSections.name)


@final
class FailureSections:
    """Adds the sections of each source to the report of a failed phase."""

    name = "chaos-failure-sections"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, None]:
        outcome = yield
        sources = item.stash.get(SOURCES, None)
        if sources:
            report: pytest.TestReport = outcome.get_result()
            if report.failed:
                for source in sources:
                    report.sections.extend((title, redact_text(text)) for title, text in source())
