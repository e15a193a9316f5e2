"""The ``chaos`` marker: its arguments, read and validated once per test at collection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

MARKER = "chaos"
MARKER_HELP = (
    "chaos(weight=1, hypothesis=None, tags=()): a resilience test; weight 1..10 counts "
    "in the resilience score, hypothesis says what must hold, tags group tests"
)
WEIGHT_RANGE = range(1, 11)
ALLOWED = ("weight", "hypothesis", "tags")


@dataclass(frozen=True)
class ChaosMarker:
    """The validated arguments of a test's ``@pytest.mark.chaos``."""

    weight: int = 1
    hypothesis: str | None = None
    tags: tuple[str, ...] = ()


class MarkerError(ValueError):
    """A ``chaos`` marker argument that is not allowed; the message names test and value."""


def parse(nodeid: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> ChaosMarker:
    where = f"{nodeid}: @pytest.mark.chaos"
    if args:
        raise MarkerError(
            f"{where} takes keyword arguments only ({', '.join(ALLOWED)}), got positional {args!r}"
        )
    unknown = sorted(set(kwargs) - set(ALLOWED))
    if unknown:
        raise MarkerError(
            f"{where}: unknown argument {unknown[0]!r}; allowed: {', '.join(ALLOWED)}"
        )
    weight = kwargs.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or weight not in WEIGHT_RANGE:
        raise MarkerError(f"{where}: weight={weight!r} is not allowed; use an integer from 1 to 10")
    hypothesis = kwargs.get("hypothesis")
    if hypothesis is not None and (not isinstance(hypothesis, str) or not hypothesis.strip()):
        raise MarkerError(
            f"{where}: hypothesis={hypothesis!r} is not allowed; use a non-empty string"
        )
    return ChaosMarker(weight, hypothesis, _tags(where, kwargs.get("tags", ())))


def _tags(where: str, tags: Any) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = (tags,)
    if not isinstance(tags, list | tuple | set | frozenset) or not all(
        isinstance(tag, str) and tag for tag in tags
    ):
        raise MarkerError(
            f"{where}: tags={tags!r} is not allowed; use a string or a list of strings"
        )
    return tuple(tags)


def of(item: pytest.Item) -> ChaosMarker | None:
    """The validated marker of ``item``, or None for a test that is not a chaos test."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    return parse(item.nodeid, marker.args, marker.kwargs)


def validate(items: Iterable[pytest.Item]) -> None:
    """Check every chaos marker of the session; report all bad ones at once."""
    problems = []
    for item in items:
        try:
            of(item)
        except MarkerError as error:
            problems.append(str(error))
    if problems:
        raise pytest.UsageError("invalid chaos marker:\n  " + "\n  ".join(problems))
