"""What one run of a test did with its dependencies, as the explorer saw it.

The baseline's recording says what to break (a dependency the test never used cannot
matter to it); every run's recording is its lineage, which the planner reads to prune
combinations: a fault that stops all traffic to a dependency hides any other fault on it,
and two faults that left the same trace are one fault as far as the test can tell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, final

from pytest_chaos.explore.cells import Dependency

#: ``uses`` of a dependency whose traffic could not be measured (a real Toxiproxy without
#: ``-proxy-metrics``): counted as used, since nothing says it was not.
UNKNOWN = -1


@final
@dataclass(frozen=True)
class Usage:
    """One dependency in one run.

    ``uses`` counts connections (a link; bytes when the server counts no connections),
    requests (an HTTP endpoint), calls (a call site) or, for a process, the uses of what
    reaches it; 0 means untouched. ``protocol`` is ``http`` for a link that carried HTTP.
    ``outcomes`` are what callers got (``201``, ``ConnectError``...). ``errors`` are a call
    site's registered exceptions, by label. ``target`` names the service the dependency
    is a way to (a link's upstream, an endpoint's host): a service fails one way at a time.
    """

    dependency: Dependency
    uses: int = 0
    bytes: int = 0
    protocol: str | None = None
    outcomes: frozenset[str] = frozenset()
    errors: tuple[str, ...] = ()
    target: str | None = None

    @property
    def service(self) -> str:
        """The service this dependency is a way to (itself, when nothing says more)."""
        return self.target or self.dependency.host or self.dependency.name

    @property
    def touched(self) -> bool:
        return self.uses != 0

    def merged(self, other: Usage) -> Usage:
        """Both observations of one dependency in one run, added up."""
        uses = UNKNOWN if UNKNOWN in (self.uses, other.uses) else self.uses + other.uses
        return replace(
            self,
            uses=uses,
            bytes=self.bytes + other.bytes,
            protocol=self.protocol or other.protocol,
            outcomes=self.outcomes | other.outcomes,
            errors=self.errors or other.errors,
            target=self.target or other.target,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.dependency.kind,
            "name": self.dependency.name,
            "uses": self.uses,
        }
        if self.bytes:
            data["bytes"] = self.bytes
        if self.protocol:
            data["protocol"] = self.protocol
        if self.outcomes:
            data["outcomes"] = sorted(self.outcomes)
        if self.errors:
            data["errors"] = list(self.errors)
        if self.target:
            data["target"] = self.target
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        return cls(
            Dependency(str(data["kind"]), str(data["name"])),
            uses=int(data.get("uses", 0)),
            bytes=int(data.get("bytes", 0)),
            protocol=data.get("protocol"),
            outcomes=frozenset(map(str, data.get("outcomes", ()))),
            errors=tuple(map(str, data.get("errors", ()))),
            target=data.get("target"),
        )


@final
@dataclass(frozen=True)
class Recording:
    """Every dependency of a run (touched or not), and what the test itself saw of the
    system: its own requests as ``METHOD /path -> outcome``."""

    usages: tuple[Usage, ...] = ()
    own: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, usages: Iterable[Usage], own: Iterable[str] = ()) -> Recording:
        merged: dict[Dependency, Usage] = {}
        for usage in usages:
            known = merged.get(usage.dependency)
            merged[usage.dependency] = usage if known is None else known.merged(usage)
        return cls(tuple(sorted(merged.values(), key=lambda u: u.dependency)), frozenset(own))

    def usage(self, dependency: Dependency) -> Usage | None:
        for usage in self.usages:
            if usage.dependency == dependency:
                return usage
        return None

    def touched(self) -> frozenset[Dependency]:
        return frozenset(usage.dependency for usage in self.usages if usage.touched)

    def uses(self, dependency: Dependency) -> int:
        usage = self.usage(dependency)
        return 0 if usage is None else usage.uses

    def trace(
        self, beyond: str | None = None
    ) -> tuple[frozenset[Dependency], frozenset[tuple[Dependency, str]], frozenset[str]]:
        """What distinguishes this run from another as the rest of the system saw it: the
        dependencies touched, what their callers got, and what the test got; the service
        ``beyond`` (a faulted one, whose failure is the fault's own doing) left out.
        Counts are left out too: a retry more or less is timing, not a different run."""
        seen = [usage for usage in self.usages if usage.service != beyond]
        touched = frozenset(usage.dependency for usage in seen if usage.touched)
        outcomes = frozenset(
            (usage.dependency, outcome) for usage in seen for outcome in usage.outcomes
        )
        return touched, outcomes, self.own

    def to_json(self) -> dict[str, Any]:
        return {
            "dependencies": [usage.to_json() for usage in self.usages],
            "own": sorted(self.own),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recording:
        return cls.of(
            (Usage.from_json(item) for item in data.get("dependencies", ())),
            map(str, data.get("own", ())),
        )
