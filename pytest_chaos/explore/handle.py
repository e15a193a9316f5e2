"""What the ``chaos_explore`` fixture gives a test: the faults of the run it is in, to
branch on (as a Filibuster test asks whether a fault was injected), and call sites to
register. Outside an exploration the run has no faults and registering does nothing, so
the same test runs plainly too."""

from __future__ import annotations

from collections.abc import Iterable
from typing import final

from pytest_chaos.explore.calls import labels
from pytest_chaos.explore.cells import FaultRef
from pytest_chaos.explore.run import CellRun


@final
class Explore:
    """The explorer, as one test sees it."""

    def __init__(self, run: CellRun | None) -> None:
        self._run = run

    def __repr__(self) -> str:
        if self._run is None:
            return "<Explore: not exploring>"
        return f"<Explore {self._run.cell.describe()}>"

    @property
    def active(self) -> bool:
        """Whether this run is part of an exploration (its baseline included)."""
        return self._run is not None

    @property
    def faults(self) -> tuple[FaultRef, ...]:
        """Every fault of this run (none outside an exploration and in a baseline)."""
        return () if self._run is None else self._run.cell.faults

    def faulted(
        self, dependency: str | None = None, fault: str | None = None
    ) -> tuple[FaultRef, ...]:
        """The faults of this run on ``dependency`` (by name: a proxy, a service, a call
        site, or ``POST payments/charges``) and of kind ``fault`` (``down``, ``503``...),
        either left out to mean any. A run whose test asked, was answered with a fault,
        and passed, ends as *expected*: the test checked what the fault may do."""
        return () if self._run is None else self._run.faulted(dependency, fault)

    def call_site(self, target: str, errors: Iterable[BaseException | type[BaseException]]) -> None:
        """Let the explorer make every call of ``target`` (a dotted path) raise one of
        ``errors`` (instances or classes), one run each; its calls are counted, so a call
        site the test never calls is not explored."""
        if self._run is None:
            labels(list(errors), target)  # the same checks, so a mistake shows in every run
            return
        self._run.register_call_site(target, errors)
