"""pytest-chaos: a pytest plugin for resilience testing."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Each public name and the module that owns it; imported on first use, so that loading the
#: plugin into every pytest run stays cheap.
_HOMES = {
    "ChaosConfig": "inject",
    "ChaosHTTP": "inject.http",
    "ChaosMonkey": "inject",
    "ChaosToxiproxy": "proxy.tracked",
    "ContainerService": "services",
    "FaultRecord": "faults",
    "ProcessService": "services",
    "ReadinessError": "services",
    "ServiceError": "services",
    "ServiceManager": "services",
    "TestSeeds": "core.seeding",
    "Toxiproxy": "proxy.client",
    "ToxiproxyError": "proxy.errors",
}

__all__ = [
    "ChaosConfig",
    "ChaosHTTP",
    "ChaosMonkey",
    "ChaosToxiproxy",
    "ContainerService",
    "FaultRecord",
    "ProcessService",
    "ReadinessError",
    "ServiceError",
    "ServiceManager",
    "TestSeeds",
    "Toxiproxy",
    "ToxiproxyError",
    "__version__",
    "faults",
    "probes",
]

if TYPE_CHECKING:
    from pytest_chaos import faults, probes
    from pytest_chaos.core.seeding import TestSeeds
    from pytest_chaos.faults import FaultRecord
    from pytest_chaos.inject import ChaosConfig, ChaosMonkey
    from pytest_chaos.inject.http import ChaosHTTP
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


def __getattr__(name: str) -> Any:
    if name in ("faults", "probes"):
        return importlib.import_module(f"{__name__}.{name}")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
