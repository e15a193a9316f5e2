"""In-process faults: the Chaos Monkey for functions (:mod:`.monkey`) and HTTP faults for
httpx (:mod:`.http`, imported on first use so the monkey alone needs no httpx)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_chaos.inject.monkey import Call, ChaosConfig, ChaosMonkey, ChaosMonkeyError
from pytest_chaos.inject.rules import Injection
from pytest_chaos.inject.trigger import Trigger

__all__ = [
    "AsyncChaosTransport",
    "Call",
    "ChaosConfig",
    "ChaosHTTP",
    "ChaosMonkey",
    "ChaosMonkeyError",
    "ChaosTransport",
    "Injection",
    "Trigger",
]

_HTTP_NAMES = {"AsyncChaosTransport", "ChaosHTTP", "ChaosTransport"}

if TYPE_CHECKING:
    from pytest_chaos.inject.http import AsyncChaosTransport, ChaosHTTP, ChaosTransport


def __getattr__(name: str) -> Any:
    if name in _HTTP_NAMES:
        return getattr(importlib.import_module(f"{__name__}.http"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
