"""The ``chaos`` marker: its arguments, read and validated once per test at collection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

import pytest

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.explore import expectations as explore_expect

if TYPE_CHECKING:
    from pytest_chaos.experiment import Experiment

MARKER = "chaos"
MARKER_HELP = (
    "chaos(weight=1, hypothesis=None, tags=(), steady_state=(), faults=(), load=None, "
    "strategy='default', halt=(), frequency_s=0.5, explore=None): a resilience test; weight "
    "1..10 counts in the resilience score, hypothesis says what must hold, tags group tests; "
    "with steady_state or faults, the test body runs as the method of an experiment; explore "
    "is True (explore it on every run), False (never), or {dependency: {fault: expect(...)}}"
)
WEIGHT_RANGE = range(1, 11)
#: The declarative form: an experiment whose method is the test's body.
EXPERIMENT_ARGS = ("steady_state", "faults", "load", "strategy", "halt", "frequency_s")
ALLOWED = ("weight", "hypothesis", "tags", *EXPERIMENT_ARGS, "explore")


@final
@dataclass(frozen=True)
class ChaosMarker:
    """The validated arguments of a test's ``@pytest.mark.chaos``."""

    weight: int = 1
    hypothesis: str | None = None
    tags: tuple[str, ...] = ()
    experiment: Experiment | None = None
    explore: explore_expect.Declaration = field(default_factory=explore_expect.Declaration)


class MarkerError(ChaosError, ValueError):
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
    tags = _tags(where, kwargs.get("tags", ()))
    try:
        explore = explore_expect.parse(kwargs.get("explore"))
    except ValueError as error:
        raise MarkerError(f"{where}: {error}") from None
    experiment = _experiment(where, nodeid, hypothesis, kwargs)
    return ChaosMarker(weight, hypothesis, tags, experiment, explore)


def _experiment(
    where: str, nodeid: str, hypothesis: str | None, kwargs: Mapping[str, Any]
) -> Experiment | None:
    """The experiment the marker declares, checked now; None without steady_state/faults."""
    declared = {key: kwargs[key] for key in EXPERIMENT_ARGS if key in kwargs}
    if not declared:
        return None
    from pytest_chaos.experiment import Experiment

    options = dict(declared)
    method = options.pop("faults", ())
    try:
        return Experiment.build(
            hypothesis or nodeid,
            method=method,
            description=hypothesis,
            body_is_method=True,
            **options,
        )
    except (TypeError, ValueError) as error:
        raise MarkerError(f"{where}: {error}") from None


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


PARSED = pytest.StashKey["ChaosMarker | None"]()


def of(item: pytest.Item) -> ChaosMarker | None:
    """The validated marker of ``item``, or None for a test that is not a chaos test."""
    if PARSED in item.stash:
        return item.stash[PARSED]
    marker = item.get_closest_marker(MARKER)
    parsed = None if marker is None else parse(item.nodeid, marker.args, marker.kwargs)
    item.stash[PARSED] = parsed
    return parsed


def validate(items: Iterable[pytest.Item]) -> None:
    """Check every chaos marker of the session; report all bad ones at once. A test whose
    marker declares an experiment gets the ``chaos`` fixture, which runs it."""
    problems = []
    for item in items:
        try:
            parsed = of(item)
        except MarkerError as error:
            problems.append(str(error))
            continue
        names = getattr(item, "fixturenames", None)
        declares = parsed is not None and parsed.experiment is not None
        if declares and names is not None and "chaos" not in names:
            names.append("chaos")
    if problems:
        raise pytest.UsageError("invalid chaos marker:\n  " + "\n  ".join(problems))
