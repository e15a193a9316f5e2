"""Which runs to make: single faults from the baseline, then combinations from what the
runs before them showed, pruned as Filibuster and lineage-driven fault injection prune them.

Round 1 puts each fault of the catalogue on each dependency the baseline touched
(*reachability*: a dependency the test never used cannot change its outcome, so its faults
are *unreached*). Round k (k >= 2) combines k faults on k different services (a link and
the process behind it, or the endpoints of one host, are one service: it fails one way at
a time), and keeps a combination only if:

- every smaller combination in it held or was expected (*minimality*, as LDFI reports
  minimal failing sets: a fault that breaks the test alone already explains every
  combination that contains it);
- every fault in it still has something to act on: its dependency carried traffic in the
  run of the others (*lineage*: a fault on a dependency that the other faults cut off
  changes nothing, so the combination is that smaller run again);
- no fault in it is *equivalent* to one already combined: faults on one service whose
  single runs ended the same way and left the same trace on the rest of the system (the
  other dependencies touched, what their callers got, what the test got) are one fault
  to it, as Filibuster's dynamic reduction assumes of a service that only shows its
  callers its answers: a 500 or a refused connection, if the caller falls back alike.

Combinations that reach a dependency the baseline never touched (a fallback the first
fault diverted traffic to) come first: they are LDFI's next hypothesis, the second support
of an outcome that survived the first fault. Within that, and across tests, the order is a
shuffle by the session seed, so a budget cuts the same runs on every run.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import final

from pytest_chaos.core.seeding import derive
from pytest_chaos.explore.catalogue import faults_for
from pytest_chaos.explore.cells import Cell, Dependency, FaultRef
from pytest_chaos.explore.outcome import GOOD, CellResult

UNREACHED = "unreached"
SAME_SERVICE = "one service twice"
BROKE_SMALLER = "a smaller combination broke"
HIDDEN = "hidden by another fault"
EQUIVALENT = "equivalent to a planned run"
UNKNOWN = "a smaller combination did not run"
BUDGET = "over the budget"
#: Pruning reasons in the order reports list them.
REASONS = (UNREACHED, SAME_SERVICE, BROKE_SMALLER, HIDDEN, EQUIVALENT, UNKNOWN, BUDGET)


@final
@dataclass(frozen=True)
class Planned:
    """A run to make: the test (its node id) and the cell; ``rank`` 0 runs first."""

    test: str
    cell: Cell
    rank: int = 1


@final
@dataclass
class Plan:
    """One round: the runs to make, in order; the runs an exhaustive exploration would
    make this round (``exhaustive``); and why the others were left out."""

    runs: list[Planned] = field(default_factory=list)
    exhaustive: int = 0
    pruned: Counter[str] = field(default_factory=Counter)

    def cut(self, budget: int | None) -> Plan:
        """This plan within ``budget`` runs (None: all of them); the rest counted."""
        if budget is None or budget >= len(self.runs):
            return self
        pruned = Counter(self.pruned)
        pruned[BUDGET] += len(self.runs) - budget
        return Plan(self.runs[:budget], self.exhaustive, pruned)


@final
class TestHistory:
    """What one test's runs so far showed: the baseline and every cell's result."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def __init__(self, test: str, baseline: CellResult) -> None:
        self.test = test
        self.baseline = baseline
        self.results: dict[Cell, CellResult] = {Cell(): baseline}
        self.faults: list[FaultRef] = []
        self.services: dict[Dependency, str] = {}
        self._equivalent: dict[FaultRef, FaultRef] = {}
        self._learn(baseline)

    def add(self, result: CellResult) -> None:
        self.results[result.parsed] = result
        self._equivalent.clear()
        self._learn(result)

    def _learn(self, result: CellResult) -> None:
        """What a run showed for the first time (a fallback's endpoints, or that a link the
        baseline left idle speaks HTTP) joins the faults to combine; the baseline never
        used it, so alone it is unreached."""
        for usage in result.recording.usages:
            self.services.setdefault(usage.dependency, usage.service)
            known = set(self.faults)
            self.faults.extend(
                fault
                for f in faults_for(usage)
                if (fault := FaultRef(usage.dependency, f)) not in known
            )

    @property
    def baseline_touched(self) -> frozenset[Dependency]:
        return self.baseline.recording.touched()

    def result_of(self, cell: Cell) -> CellResult | None:
        """The result of ``cell``: its own run, or the run it is known to repeat (a fault
        with nothing to act on changes nothing; an equivalent fault, by assumption,
        nothing either); None when neither is known."""
        found = self.results.get(cell)
        if found is not None:
            return found
        for fault in cell.faults:
            rest = Cell.of(*(f for f in cell.faults if f != fault))
            before = self.result_of(rest)
            if before is not None and fault.dependency not in before.recording.touched():
                return before
        substituted = Cell.of(*(self.representative(f) for f in cell.faults))
        if substituted != cell:
            return self.result_of(substituted)
        return None

    def service(self, fault: FaultRef) -> str:
        return self.services.get(fault.dependency, fault.dependency.name)

    def representative(self, fault: FaultRef) -> FaultRef:
        """The first fault on the same service (in the catalogue's order) whose single run
        ended the same way and left the same trace on the rest of the system as
        ``fault``'s (``fault`` itself if none, or if it did not run)."""
        if not self._equivalent:
            self._equivalent = self._classes()
        return self._equivalent.get(fault, fault)

    def _classes(self) -> dict[FaultRef, FaultRef]:
        first: dict[tuple[object, ...], FaultRef] = {}
        classes: dict[FaultRef, FaultRef] = {}
        for fault in self.faults:
            result = self.results.get(Cell.of(fault))
            if result is None:
                continue
            service = self.service(fault)
            key = (service, result.outcome, result.recording.trace(beyond=service))
            classes[fault] = first.setdefault(key, fault)
        return classes


def plan_singles(histories: Sequence[TestHistory], *, seed: int, exhaustive: bool = False) -> Plan:
    """Round 1: every fault that fits a dependency, on those the baseline touched (all of
    them when ``exhaustive``)."""
    plan = Plan()
    chosen: dict[str, list[Planned]] = {}
    for history in histories:
        touched = history.baseline_touched
        plan.exhaustive += len(history.faults)
        for fault in history.faults:
            if exhaustive or fault.dependency in touched:
                chosen.setdefault(history.test, []).append(Planned(history.test, Cell.of(fault)))
            else:
                plan.pruned[UNREACHED] += 1
    plan.runs = _interleave(chosen, seed, round_number=1)
    return plan


def plan_combinations(
    histories: Sequence[TestHistory], size: int, *, seed: int, exhaustive: bool = False
) -> Plan:
    """Round ``size``: combinations of ``size`` faults, pruned (see the module's account)
    unless ``exhaustive``."""
    plan = Plan()
    chosen: dict[str, list[Planned]] = {}
    for history in histories:
        for faults in combinations(history.faults, size):
            plan.exhaustive += 1
            cell = Cell.of(*faults)
            reason = None if exhaustive else _pruned(history, cell)
            if reason is not None:
                plan.pruned[reason] += 1
                continue
            fallback = any(f.dependency not in history.baseline_touched for f in faults)
            chosen.setdefault(history.test, []).append(
                Planned(history.test, cell, rank=0 if fallback else 1)
            )
    plan.runs = _interleave(chosen, seed, round_number=size)
    return plan


def combinations(faults: Sequence[FaultRef], size: int) -> Iterator[tuple[FaultRef, ...]]:
    """Every ``size`` faults of ``faults`` on ``size`` different dependencies."""
    for group in itertools.combinations(faults, size):
        if len({fault.dependency for fault in group}) == size:
            yield group


def _pruned(history: TestHistory, cell: Cell) -> str | None:
    """Why ``cell`` need not run, or None if it must."""
    if len({history.service(fault) for fault in cell.faults}) < len(cell.faults):
        return SAME_SERVICE
    smaller = [Cell.of(*(f for f in cell.faults if f != fault)) for fault in cell.faults]
    results = [history.result_of(part) for part in smaller]
    if any(result is not None and result.outcome not in GOOD for result in results):
        return BROKE_SMALLER
    if any(history.representative(fault) != fault for fault in cell.faults):
        return EQUIVALENT
    if any(result is None for result in results):
        return UNKNOWN
    for fault, result in zip(cell.faults, results, strict=True):
        assert result is not None
        if fault.dependency not in result.recording.touched():
            return HIDDEN
    return None


def _interleave(chosen: Mapping[str, list[Planned]], seed: int, round_number: int) -> list[Planned]:
    """Each test's runs in rank order, shuffled by the seed within a rank; then taken in
    turn from each test (tests in seeded order), so a budget spreads over all of them."""
    tests = sorted(chosen)
    random.Random(derive(seed, "explore", str(round_number))).shuffle(tests)
    queues = []
    for test in tests:
        runs = sorted(chosen[test], key=lambda planned: planned.cell)
        rng = random.Random(derive(seed, "explore", str(round_number), test))
        rng.shuffle(runs)
        queues.append(sorted(runs, key=lambda planned: planned.rank))  # stable: keeps shuffle
    ordered: list[Planned] = []
    for turn in itertools.zip_longest(*queues):
        ordered.extend(planned for planned in turn if planned is not None)
    return ordered
