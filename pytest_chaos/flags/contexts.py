"""OpenFeature evaluation contexts in Unleash's shape, one mapping for every way in.

The in-process provider (``openfeature.py``) and the OFREP server (``ofrep.py``) both use
:func:`to_unleash`, so a user gets the same answer whichever way the flag is read. The
mapping is the one OpenFeature's Unleash providers apply: the targeting key becomes
``userId``; ``userId``, ``sessionId``, ``remoteAddress``, ``environment``, ``appName`` and
``currentTime`` stay top-level fields; every other attribute, and each entry of a
``properties`` object, goes into ``properties``. Unleash contexts hold strings, so values
become strings: booleans ``true``/``false``, datetimes ISO 8601, numbers as Python writes
them, objects and lists as compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, final

__all__ = ["FIELDS", "StrictContext", "text", "to_unleash"]

FIELDS = frozenset(
    {"userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime"}
)
"""Unleash's top-level context fields; every other attribute goes into ``properties``."""


@final
class StrictContext(dict[str, Any]):
    """A context whose evaluation answers ``TARGETING_KEY_MISSING`` rather than fall back,
    as Unleash does, to a random identifier when the stickiness field is missing."""


def text(value: object) -> str:
    """An attribute as Unleash contexts hold values: a string."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)
    return str(value)


def to_unleash(targeting_key: str | None, attributes: Mapping[str, Any]) -> StrictContext:
    """An OpenFeature context (targeting key and attributes) as a strict Unleash context.

    The targeting key wins over a ``userId`` attribute; ``None`` values are dropped.
    """
    if not attributes:
        return StrictContext(userId=targeting_key) if targeting_key else StrictContext()
    result = StrictContext()
    properties: dict[str, str] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        if name in FIELDS:
            result[name] = value if value.__class__ is str else text(value)
        elif name == "properties" and isinstance(value, Mapping):
            for inner, item in value.items():
                if item is not None:
                    properties[inner] = item if item.__class__ is str else text(item)
        else:
            properties[name] = value if value.__class__ is str else text(value)
    if targeting_key:
        result["userId"] = targeting_key
    if properties:
        result["properties"] = properties
    return result
