"""pytest-chaos: a pytest plugin for resilience testing."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ProcessService",
    "ReadinessError",
    "ServiceError",
    "ServiceManager",
    "__version__",
    "probes",
]

if TYPE_CHECKING:
    from . import probes
    from .services import ProcessService, ReadinessError, ServiceError, ServiceManager


def __getattr__(name: str) -> Any:
    """The public names, imported on first use: loading the plugin stays cheap."""
    if name == "probes":
        return importlib.import_module(f"{__name__}.probes")
    if name in __all__:
        return getattr(importlib.import_module(f"{__name__}.services"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
