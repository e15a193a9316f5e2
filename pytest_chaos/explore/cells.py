"""What one exploration run is: a cell of the matrix, named by the faults it applies.

A cell's id is the parametrization id of the run (``test_x[explore:link:payments:down]``),
so it is also how a run is replayed: the id alone says which faults to apply, with no
state from the run that planned it. ``explore:baseline`` is the run without faults; other
ids join one or more faults with ``+``, each ``KIND:DEPENDENCY:FAULT``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import final
from urllib.parse import quote, unquote

from pytest_chaos.core.errors import ChaosError

PREFIX = "explore:"
BASELINE = "baseline"
#: Kinds of dependency: a proxy of the ``toxiproxy`` fixture, an HTTP endpoint reached
#: with httpx from the test process, a process or container of the ``service`` fixture, a
#: function registered as a call site.
KINDS = ("link", "http", "process", "call")
JOIN = "+"
#: Characters a dependency's name cannot carry as they are in an id: they are
#: percent-encoded (``%2B`` for ``+``), so any proxy or service name can be explored.
_RESERVED = "%+[]\n\r\t"
#: Where an explore id starts among a test's parametrization ids: it is always the last.
_IN_PARAMS = re.compile(r"(?:^|-)explore:(.*)\Z", re.S)


class CellError(ChaosError, ValueError):
    """An explore id that cannot be read; the message names it and what is allowed."""


@final
@dataclass(frozen=True, order=True)
class Dependency:
    """Something a test relies on: ``kind`` (one of :data:`KINDS`) and a name that stays
    the same from run to run (a proxy's or service's name, ``POST payments/charges``, a
    dotted function path)."""

    kind: str
    name: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CellError(f"dependency kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.name:
            raise CellError(f"a {self.kind} dependency needs a name")

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def host(self) -> str | None:
        """The host an HTTP endpoint is on (``payments`` for ``POST payments/charges``)."""
        if self.kind != "http":
            return None
        return self.name.partition(" ")[2].split("/", 1)[0]

    def answers_to(self, name: str) -> bool:
        """Whether ``name`` names this dependency: its own name, or its host's."""
        return name in (self.name, self.host)

    @property
    def key(self) -> str:
        return f"{self.kind}:{_encode(self.name)}"


@final
@dataclass(frozen=True, order=True)
class FaultRef:
    """One fault of the catalogue (``fault``) on one dependency."""

    dependency: Dependency
    fault: str

    @property
    def id(self) -> str:
        return f"{self.dependency.key}:{self.fault}"

    def __str__(self) -> str:
        return f"{self.fault} on {self.dependency}"

    @classmethod
    def parse(cls, text: str) -> FaultRef:
        kind, sep, rest = text.partition(":")
        name, sep2, fault = rest.rpartition(":")
        if not sep or not sep2 or not name or not fault:
            raise CellError(
                f"explore fault {text!r}: expected KIND:DEPENDENCY:FAULT, such as "
                "link:payments:down"
            )
        return cls(Dependency(kind, _decode(name)), fault)


@final
@dataclass(frozen=True, order=True)
class Cell:
    """The faults of one run, in a fixed order; none for the baseline."""

    faults: tuple[FaultRef, ...] = ()

    @classmethod
    def of(cls, *faults: FaultRef) -> Cell:
        dependencies = [fault.dependency for fault in faults]
        if len(set(dependencies)) != len(dependencies):
            raise CellError(f"a cell fails each dependency one way: {' + '.join(map(str, faults))}")
        return cls(tuple(sorted(faults)))

    @property
    def baseline(self) -> bool:
        return not self.faults

    @property
    def id(self) -> str:
        if self.baseline:
            return PREFIX + BASELINE
        return PREFIX + JOIN.join(fault.id for fault in self.faults)

    @property
    def dependencies(self) -> frozenset[Dependency]:
        return frozenset(fault.dependency for fault in self.faults)

    def describe(self) -> str:
        """``no fault`` or ``down on link payments + kill on process redis``."""
        return " + ".join(map(str, self.faults)) or "no fault"

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, text: str) -> Cell:
        """The cell of an explore id (``explore:...``)."""
        if not text.startswith(PREFIX):
            raise CellError(f"{text!r} is not an explore id (they start with {PREFIX!r})")
        body = text[len(PREFIX) :]
        if body == BASELINE:
            return cls()
        if not body:
            raise CellError(f"{text!r} names no fault")
        return cls.of(*(FaultRef.parse(part) for part in body.split(JOIN)))


def split_name(name: str) -> tuple[str, str | None]:
    """A test item's name and the explore id in its parametrization, if any:
    ``test_x[1-explore:baseline]`` gives ``("test_x[1]", "explore:baseline")``."""
    base, bracket, params = name.partition("[")
    if not bracket or not params.endswith("]"):
        return name, None
    found = _IN_PARAMS.search(params[:-1])
    if found is None:
        return name, None
    rest = params[: found.start()]
    return (f"{base}[{rest}]" if rest else base), PREFIX + found.group(1)


def _encode(name: str) -> str:
    return quote(name, safe="".join(c for c in map(chr, range(32, 127)) if c not in _RESERVED))


def _decode(name: str) -> str:
    return unquote(name)
