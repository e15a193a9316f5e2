"""Hooks that other plugins and conftest files implement to observe chaos as it happens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .faults import FaultRecord


@pytest.hookspec
def pytest_chaos_fault_applied(item: pytest.Item | None, fault: FaultRecord) -> None:
    """A fault was applied (or, under ``--chaos-dry-run``, recorded without being applied).

    ``item`` is the test that applied it, or None for a session-scoped fixture.
    """


@pytest.hookspec
def pytest_chaos_fault_rolled_back(item: pytest.Item | None, fault: FaultRecord) -> None:
    """A fault was undone: by the test itself, or by teardown whatever the outcome."""
