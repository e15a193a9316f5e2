"""Every toxic type of the embedded proxy by name (Toxiproxy's, then its extensions), and
the reading of a toxic's JSON description (the API's create and update bodies) against
them: an unknown type, stream or attribute, or a value out of range, is an error that
names it."""

from __future__ import annotations

import math
from typing import Any

from pytest_chaos.proxy.errors import InvalidToxic, bad_body
from pytest_chaos.proxy.http_toxics import EXTENSIONS
from pytest_chaos.proxy.toxics import STREAMS, TOXIPROXY_TYPES, Toxic

#: Every toxic type of the embedded proxy, by name: Toxiproxy's, then its extensions.
REGISTRY: dict[str, type[Toxic]] = {cls.type: cls for cls in (*TOXIPROXY_TYPES, *EXTENSIONS)}


def parse_toxic(spec: Any) -> Toxic:
    """Build a toxic from the JSON body of ``POST /proxies/{proxy}/toxics``, with
    Toxiproxy's defaults (stream downstream, name ``<type>_<stream>``, toxicity 1)."""
    if not isinstance(spec, dict):
        raise bad_body(f"expected a JSON object, got {_json_kind(spec)}")
    stream = _optional_str(spec, "stream", "downstream").lower()
    if stream not in STREAMS:
        raise InvalidToxic("stream was invalid, can be either upstream or downstream")
    type_name = _optional_str(spec, "type", "")
    cls = REGISTRY.get(type_name)
    if cls is None:
        raise InvalidToxic("invalid toxic type")
    name = _optional_str(spec, "name", "") or f"{type_name}_{stream}"
    toxicity = parse_toxicity(spec.get("toxicity", 1.0))
    attributes = parse_attributes(cls, spec.get("attributes", {}))
    return cls(name, stream, toxicity, attributes)


def parse_update(toxic: Toxic, spec: Any) -> tuple[dict[str, int | str], float | None]:
    """Validate the body of a toxic update: attributes to merge, and a new toxicity if given."""
    if not isinstance(spec, dict):
        raise bad_body(f"expected a JSON object, got {_json_kind(spec)}")
    attributes = parse_attributes(type(toxic), spec.get("attributes", {}))
    toxicity = parse_toxicity(spec["toxicity"]) if "toxicity" in spec else None
    return attributes, toxicity


def parse_toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidToxic(f"toxicity must be a number from 0 to 1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise InvalidToxic(f"toxicity must be between 0 and 1 (inclusive), got {value!r}")
    return float(value)


def parse_attributes(cls: type[Toxic], attributes: Any) -> dict[str, int | str]:
    """Check attribute names and values against the toxic type: non-negative integers
    (within the type's limits), or text for an extension's text attributes."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise InvalidToxic(f"attributes must be a JSON object, got {_json_kind(attributes)}")
    allowed = {**cls.attribute_defaults, **cls.text_defaults}
    parsed: dict[str, int | str] = {}
    for key, value in attributes.items():
        if key not in allowed:
            names = ", ".join(allowed) or "none"
            raise InvalidToxic(
                f"unknown attribute {key!r} for toxic type {cls.type}; allowed: {names}"
            )
        if key in cls.text_defaults:
            if not isinstance(value, str) or len(value) > 1024:
                raise InvalidToxic(f"attribute {key} must be a string, got {value!r}")
            parsed[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidToxic(f"attribute {key} must be an integer, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise InvalidToxic(f"attribute {key} must be an integer, got {value!r}")
        if value < 0:
            raise InvalidToxic(f"attribute {key} must not be negative, got {value!r}")
        if value > 2**53:
            raise InvalidToxic(f"attribute {key} is too large: {value!r}")
        low, high = cls.limits.get(key, (0, 2**53))
        if not low <= value <= high:
            raise InvalidToxic(f"attribute {key} must be from {low} to {high}, got {value!r}")
        parsed[key] = int(value)
    return parsed


def _optional_str(spec: dict[str, Any], key: str, default: str) -> str:
    value = spec.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_body(f"{key} must be a string, got {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return kinds.get(type(value), "a number")
