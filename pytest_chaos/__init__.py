"""pytest-chaos: a pytest plugin for resilience testing.

This module is the public API: every name the documentation imports is here, in
``__all__``. Each is imported on first use, so that loading the plugin into every pytest
run stays cheap; the folders below own them (CONTRIBUTING.md has the map)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Each public name and the module that owns it.
_HOMES = {
    "ChaosConfig": "inject",
    "ChaosError": "core.errors",
    "ChaosHTTP": "inject.http",
    "ChaosMonkey": "inject",
    "ChaosToxiproxy": "proxy.tracked",
    "ContainerService": "services",
    "Deviated": "experiment.errors",
    "Experiment": "experiment.model",
    "ExperimentError": "experiment.errors",
    "FaultRecord": "core.faultlog",
    "FlagOffWarning": "flags.errors",
    "FlagStore": "flags.store",
    "Halted": "experiment.errors",
    "Judge": "canary.judge",
    "Load": "steady.load",
    "ManualClock": "flags.changes",
    "Metrics": "steady.metrics",
    "NotSteady": "experiment.errors",
    "OfrepServer": "flags.ofrep",
    "ProcessService": "services",
    "ReadinessError": "services",
    "Router": "canary.router",
    "ServerThread": "proxy.api",
    "ServiceError": "services",
    "ServiceManager": "services",
    "StatisticalJudge": "canary.judge",
    "StoreProvider": "flags.openfeature",
    "TestSeeds": "core.seeding",
    "ThresholdJudge": "canary.judge",
    "Toxiproxy": "proxy.client",
    "ToxiproxyError": "proxy.errors",
    "expect": "explore.expectations",
}
#: Public modules: fault descriptions, probes and tolerances.
_MODULES = {"faults": "faults", "probes": "probes", "tolerances": "steady.tolerance"}

__all__ = [
    "ChaosConfig",
    "ChaosError",
    "ChaosHTTP",
    "ChaosMonkey",
    "ChaosToxiproxy",
    "ContainerService",
    "Deviated",
    "Experiment",
    "ExperimentError",
    "FaultRecord",
    "FlagOffWarning",
    "FlagStore",
    "Halted",
    "Judge",
    "Load",
    "ManualClock",
    "Metrics",
    "NotSteady",
    "OfrepServer",
    "ProcessService",
    "ReadinessError",
    "Router",
    "ServerThread",
    "ServiceError",
    "ServiceManager",
    "StatisticalJudge",
    "StoreProvider",
    "TestSeeds",
    "ThresholdJudge",
    "Toxiproxy",
    "ToxiproxyError",
    "__version__",
    "expect",
    "faults",
    "probes",
    "tolerances",
]

if TYPE_CHECKING:
    from pytest_chaos import faults, probes
    from pytest_chaos.canary.judge import Judge, StatisticalJudge, ThresholdJudge
    from pytest_chaos.canary.router import Router
    from pytest_chaos.core.errors import ChaosError
    from pytest_chaos.core.faultlog import FaultRecord
    from pytest_chaos.core.seeding import TestSeeds
    from pytest_chaos.experiment.errors import Deviated, ExperimentError, Halted, NotSteady
    from pytest_chaos.experiment.model import Experiment
    from pytest_chaos.explore.expectations import expect
    from pytest_chaos.flags.changes import ManualClock
    from pytest_chaos.flags.errors import FlagOffWarning
    from pytest_chaos.flags.ofrep import OfrepServer
    from pytest_chaos.flags.openfeature import StoreProvider
    from pytest_chaos.flags.store import FlagStore
    from pytest_chaos.inject import ChaosConfig, ChaosMonkey
    from pytest_chaos.inject.http import ChaosHTTP
    from pytest_chaos.proxy.api import ServerThread
    from pytest_chaos.proxy.client import Toxiproxy
    from pytest_chaos.proxy.errors import ToxiproxyError
    from pytest_chaos.proxy.tracked import ChaosToxiproxy
    from pytest_chaos.services import (
        ContainerService,
        ProcessService,
        ReadinessError,
        ServiceError,
        ServiceManager,
    )
    from pytest_chaos.steady import tolerance as tolerances
    from pytest_chaos.steady.load import Load
    from pytest_chaos.steady.metrics import Metrics

    __version__: str


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from pytest_chaos.core.version import VERSION

        return VERSION
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{_MODULES[name]}")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
