"""A variant's value, typed by its Unleash payload: what OpenFeature reads for a variant.

The OFREP server sends this value and the in-process provider answers it, so a service
reads the same thing in process and over HTTP. A ``number`` payload is an integer when
written as one (``"5"``), else a float (``"2.5"``, ``"5.0"``); a ``json`` payload is the
object or array it holds; ``string`` and ``csv`` payloads are their text; a variant
without a payload is its name. What cannot be typed (a ``number`` that is not a finite
number, a ``json`` payload that is not JSON, another payload type) is its raw text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REQUESTED", "typed_value"]

_INTEGER = re.compile(r"[+-]?[0-9]+")

REQUESTED: dict[str, type | tuple[type, ...]] = {
    "boolean": bool,
    "string": str,
    "integer": int,
    "float": float,
    "object": (dict, list),
}
"""The Python type each OpenFeature flag type accepts (as the OFREP provider checks it)."""


def _number(raw: str) -> int | float | str:
    text = raw.strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return raw
    return number if math.isfinite(number) else raw


def _json(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, dict | list) else raw


def typed_value(variant: str, payload: Mapping[str, Any] | None) -> Any:
    """The value OpenFeature reads for ``variant`` with ``payload`` (see the module)."""
    if payload is None:
        return variant
    kind, raw = payload.get("type"), payload.get("value")
    if not isinstance(raw, str):
        return raw if isinstance(raw, dict | list | int | float | str) else str(raw)
    if kind == "number":
        return _number(raw)
    if kind == "json":
        return _json(raw)
    return raw
