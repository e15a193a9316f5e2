"""The planner: singles on what the baseline touched; combinations pruned by minimality,
lineage and equivalence; fallbacks first; the order fixed by the seed."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_chaos.explore.catalogue import faults_for
from pytest_chaos.explore.cells import Cell, Dependency, FaultRef
from pytest_chaos.explore.outcome import BROKE, HELD, CellResult
from pytest_chaos.explore.planner import (
    BROKE_SMALLER,
    BUDGET,
    EQUIVALENT,
    HIDDEN,
    SAME_SERVICE,
    UNREACHED,
    TestHistory,
    plan_combinations,
    plan_singles,
)
from pytest_chaos.explore.recording import Recording, Usage

PRIMARY = Dependency("link", "primary")
REPLICA = Dependency("link", "replica")
AUDIT = Dependency("process", "audit")
LINK_FAULTS = faults_for(Usage(PRIMARY))


def result(
    cell: Cell, outcome: str, touched: Iterable[Dependency], *, own: Iterable[str] = ()
) -> CellResult:
    touched = set(touched)
    usages = [Usage(dep, uses=int(dep in touched)) for dep in (PRIMARY, REPLICA, AUDIT)]
    return CellResult(
        "t.py::test_x",
        cell.id,
        "t.py::test_x[...]",
        outcome,
        recording=Recording.of(usages, own),
    )


def single(dependency: Dependency, fault: str) -> Cell:
    return Cell.of(FaultRef(dependency, fault))


def history() -> TestHistory:
    """Reads go to the primary; the replica is a fallback, untouched while the primary
    answers; the audit process is used."""
    return TestHistory("t.py::test_x", result(Cell(), HELD, [PRIMARY, AUDIT]))


def test_singles_go_on_what_the_baseline_touched() -> None:
    plan = plan_singles([history()], seed=1)
    planned = {p.cell for p in plan.runs}
    assert planned == {single(PRIMARY, f) for f in LINK_FAULTS} | {
        single(AUDIT, "kill"),
        single(AUDIT, "pause"),
    }
    assert plan.pruned == {UNREACHED: len(LINK_FAULTS)}
    assert plan.exhaustive == 2 * len(LINK_FAULTS) + 2
    exhaustive = plan_singles([history()], seed=1, exhaustive=True)
    assert len(exhaustive.runs) == exhaustive.exhaustive == plan.exhaustive


def explored() -> TestHistory:
    """Every single ran: the primary's faults held thanks to the replica (which they
    touched), except ``truncated``, which broke; killing the audit process held and left
    the primary untouched (the request stops there); pausing it held."""
    h = history()
    for fault in LINK_FAULTS:
        outcome = BROKE if fault == "truncated" else HELD
        h.add(
            result(single(PRIMARY, fault), outcome, [PRIMARY, REPLICA, AUDIT], own=["GET / -> 200"])
        )
    h.add(result(single(AUDIT, "kill"), HELD, [AUDIT], own=["GET / -> 503"]))
    h.add(result(single(AUDIT, "pause"), HELD, [PRIMARY, AUDIT], own=["GET / -> 200"]))
    return h


def test_combinations_are_pruned_by_minimality_lineage_and_equivalence() -> None:
    h = explored()
    plan = plan_combinations([h], 2, seed=1)
    planned = {p.cell for p in plan.runs}
    # every held fault on the primary left the same trace: one of them stands for all
    representative = FaultRef(PRIMARY, LINK_FAULTS[0])
    assert all(
        representative in cell.faults or PRIMARY not in cell.dependencies for cell in planned
    )
    # the fallback: the primary's failure sends traffic to the replica, so every fault on
    # the replica is combined with it, and these come first
    fallback = {Cell.of(representative, FaultRef(REPLICA, f)) for f in LINK_FAULTS}
    assert fallback <= planned
    assert {p.cell for p in plan.runs[: len(fallback)]} == fallback
    # killing audit leaves the primary untouched: a fault there would change nothing
    assert Cell.of(representative, FaultRef(AUDIT, "kill")) not in planned
    assert Cell.of(representative, FaultRef(AUDIT, "pause")) in planned
    # truncated broke alone: no combination with it
    assert not any(FaultRef(PRIMARY, "truncated") in cell.faults for cell in planned)
    assert (
        plan.pruned[BROKE_SMALLER] > 0 and plan.pruned[HIDDEN] > 0 and plan.pruned[EQUIVALENT] > 0
    )
    assert len(planned) + sum(plan.pruned.values()) == plan.exhaustive


def test_the_seed_fixes_the_order_and_the_budget_cuts_its_tail() -> None:
    first = [p.cell for p in plan_singles([history()], seed=1).runs]
    assert first == [p.cell for p in plan_singles([history()], seed=1).runs]
    assert first != [p.cell for p in plan_singles([history()], seed=2).runs]
    cut = plan_singles([history()], seed=1).cut(3)
    assert [p.cell for p in cut.runs] == first[:3]
    assert cut.pruned[BUDGET] == len(first) - 3


def test_tests_take_turns_so_a_budget_reaches_them_all() -> None:
    other = TestHistory("t.py::test_y", result(Cell(), HELD, [AUDIT]))
    runs = plan_singles([history(), other], seed=3).cut(4).runs
    assert {p.test for p in runs} == {"t.py::test_x", "t.py::test_y"}


def test_a_service_fails_one_way_at_a_time() -> None:
    link, process = Dependency("link", "db"), Dependency("process", "db")
    usages = [Usage(link, uses=1, target="db"), Usage(process, uses=1)]
    h = TestHistory(
        "t.py::test_db",
        CellResult("t.py::test_db", "explore:baseline", "", HELD, recording=Recording.of(usages)),
    )
    for fault in h.faults:
        h.add(
            CellResult("t.py::test_db", Cell.of(fault).id, "", HELD, recording=Recording.of(usages))
        )
    plan = plan_combinations([h], 2, seed=1)
    assert plan.runs == []
    assert plan.pruned == {SAME_SERVICE: plan.exhaustive}
    assert plan.exhaustive == len(LINK_FAULTS) * 2


def test_a_dependency_first_seen_in_a_fallback_joins_the_combinations() -> None:
    h = history()
    cache = Dependency("http", "GET cache/items")
    fallback = Recording.of([Usage(PRIMARY, uses=1), Usage(cache, uses=1)])
    for fault in LINK_FAULTS:
        h.add(CellResult("t.py::test_x", single(PRIMARY, fault).id, "", HELD, recording=fallback))
    planned = {p.cell for p in plan_combinations([h], 2, seed=1).runs}
    assert any(cache in cell.dependencies for cell in planned)
