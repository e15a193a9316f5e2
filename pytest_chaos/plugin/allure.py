"""Allure, when allure-pytest is recording (``--alluredir``): each experiment's journal and
timeline chart are attached to its test, and each fault window becomes a step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

#: The name allure-pytest registers its listener under when ``--alluredir`` is given.
LISTENER = "allure_listener"


def active(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin(LISTENER)


def attach(journal: Mapping[str, Any]) -> None:
    """Attach one experiment to the running test (call it from the test's own thread)."""
    import allure

    from pytest_chaos.core.redaction import redact
    from pytest_chaos.experiment.journal import dumps
    from pytest_chaos.report.chart import timeline_svg

    journal = redact(journal)
    title = (journal.get("experiment") or {}).get("title") or "experiment"
    for entry in (journal.get("pytest_chaos") or {}).get("timeline") or []:
        with allure.step(f"fault: {entry.get('fault')} ({_window(entry)})"):
            if entry.get("error"):
                allure.attach(str(entry["error"]), "error", allure.attachment_type.TEXT)
    allure.attach(
        dumps(journal),
        name=f"chaos journal: {title}",
        attachment_type=allure.attachment_type.JSON,
    )
    allure.attach(
        timeline_svg(journal),
        name=f"chaos timeline: {title}",
        attachment_type=allure.attachment_type.SVG,
    )


def _window(entry: Mapping[str, Any]) -> str:
    applied, ended = entry.get("applied_at_s"), entry.get("ended_at_s")
    if applied is None:
        return "not applied"
    return f"t+{applied:.2f} s to " + (f"t+{ended:.2f} s" if ended is not None else "the end")
