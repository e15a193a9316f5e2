"""Hooks that other plugins and conftest files implement to observe chaos as it happens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_chaos.core.faultlog import FaultRecord
    from pytest_chaos.ctk.files import ExperimentFile
    from pytest_chaos.experiment import Experiment
    from pytest_chaos.proxy.client import Proxy
    from pytest_chaos.services.lifecycle import Service


@pytest.hookspec
def pytest_chaos_fault_applied(item: pytest.Item | None, fault: FaultRecord) -> None:
    """A fault was applied (or, under ``--chaos-dry-run``, recorded without being applied).

    ``item`` is the test that applied it, or None for a session-scoped fixture.
    """


@pytest.hookspec
def pytest_chaos_fault_rolled_back(item: pytest.Item | None, fault: FaultRecord) -> None:
    """A fault was undone: by the test itself, or by teardown whatever the outcome."""


@pytest.hookspec
def pytest_chaos_experiment_started(
    item: pytest.Item, experiment: Experiment | ExperimentFile
) -> None:
    """An experiment of ``item`` is about to check its steady state and apply its faults:
    an ``Experiment``, or the ``ExperimentFile`` of ``chaos.run_file``; both have a
    ``title``."""


@pytest.hookspec
def pytest_chaos_experiment_finished(
    item: pytest.Item, experiment: Experiment | ExperimentFile, journal: dict[str, Any]
) -> None:
    """An experiment ended, whatever its outcome; ``journal`` is its journal (Chaos
    Toolkit's format: ``status``, ``deviated``, ``steady_states``, ``run``, ``rollbacks``,
    and pytest-chaos's own fields under ``pytest_chaos``)."""


@pytest.hookspec
def pytest_chaos_proxy_created(item: pytest.Item | None, proxy: Proxy, name: str) -> None:
    """A test made a proxy with the ``toxiproxy`` fixture (``item`` None: a session
    fixture); ``name`` is the name the test gave it (without an xdist worker's prefix)."""


@pytest.hookspec
def pytest_chaos_service_started(item: pytest.Item, service: Service) -> None:
    """A service of the ``service`` fixture was started and its readiness probes passed."""
