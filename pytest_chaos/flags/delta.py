"""Unleash's delta API documents (client specification 19 and 20), read as one state.

A delta document is ``{"events": [...]}``: a ``hydration`` (every feature and segment),
then changes: ``feature-updated``, ``feature-removed``, ``segment-updated`` and
``segment-removed``. Applied in order they give the ``{"features", "segments"}`` state
the store loads; an event of another type is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_chaos.flags.errors import FlagConfigError

__all__ = ["EVENT_TYPES", "resolve_delta"]

EVENT_TYPES = (
    "hydration",
    "feature-updated",
    "feature-removed",
    "segment-updated",
    "segment-removed",
)


def _field(event: Mapping[str, Any], key: str, index: int) -> Any:
    if key not in event:
        raise FlagConfigError(f"delta event #{index} ({event.get('type')}) needs {key!r}")
    return event[key]


def _named(items: object, key: str, index: int) -> dict[Any, Any]:
    if not isinstance(items, list) or not all(isinstance(i, Mapping) and key in i for i in items):
        raise FlagConfigError(f"delta event #{index}: a list of objects with {key!r} expected")
    return {item[key]: item for item in items}


def resolve_delta(document: Mapping[str, Any]) -> dict[str, Any]:
    """The state (``features`` and ``segments``) the events of ``document`` leave."""
    events = document.get("events")
    if not isinstance(events, list):
        raise FlagConfigError(f"a delta document's events must be a list, got {events!r}")
    features: dict[Any, Any] = {}
    segments: dict[Any, Any] = {}
    for index, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise FlagConfigError(f"delta event #{index} must be an object, got {event!r}")
        kind = event.get("type")
        if kind == "hydration":
            features = _named(_field(event, "features", index), "name", index)
            segments = _named(event.get("segments") or [], "id", index)
        elif kind == "feature-updated":
            features.update(_named([_field(event, "feature", index)], "name", index))
        elif kind == "feature-removed":
            features.pop(_field(event, "featureName", index), None)
        elif kind == "segment-updated":
            segments.update(_named([_field(event, "segment", index)], "id", index))
        elif kind == "segment-removed":
            segments.pop(_field(event, "segmentId", index), None)
        else:
            raise FlagConfigError(
                f"delta event #{index} has type {kind!r}; one of {', '.join(EVENT_TYPES)} expected"
            )
    return {"features": list(features.values()), "segments": list(segments.values())}
