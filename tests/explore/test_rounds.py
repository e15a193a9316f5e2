"""The rounds: baselines, then singles, then combinations, within the budget; the tests
that cannot be explored say why. Each round's runs are made here by a function that
plays a small system: reads go to a primary, then to a replica, and fail without both."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pytest_chaos.explore.cells import Cell, Dependency
from pytest_chaos.explore.outcome import BROKE, FAILED_BASELINE, HELD, UNTOUCHED, CellResult
from pytest_chaos.explore.planner import BUDGET, Planned
from pytest_chaos.explore.recording import Recording, Usage
from pytest_chaos.explore.rounds import Exploration, explore
from pytest_chaos.explore.settings import Budget, ExploreSettings

PRIMARY, REPLICA = Dependency("link", "primary"), Dependency("link", "replica")
READS, BROKEN, IDLE = "t.py::test_reads", "t.py::test_broken", "t.py::test_idle"


def play(planned: Planned) -> CellResult:
    """The run of ``planned`` in the small system (``slow-close`` is the only fault a
    store survives)."""
    if planned.test == BROKEN:
        return CellResult(planned.test, planned.cell.id, "", FAILED_BASELINE)
    if planned.test == IDLE:
        return CellResult(planned.test, planned.cell.id, "", UNTOUCHED)
    failed = {f.dependency for f in planned.cell.faults if f.fault != "slow-close"}
    touched = [PRIMARY] + ([REPLICA] if PRIMARY in failed else [])
    outcome = BROKE if {PRIMARY, REPLICA} <= failed else HELD
    usages = [Usage(dep, uses=int(dep in touched)) for dep in (PRIMARY, REPLICA)]
    return CellResult(planned.test, planned.cell.id, "", outcome, recording=Recording.of(usages))


class Player:
    def __init__(self) -> None:
        self.rounds: list[list[Planned]] = []
        self.deadlines: list[float | None] = []

    def __call__(self, planned: Sequence[Planned], deadline: float | None) -> list[CellResult]:
        self.rounds.append(list(planned))
        self.deadlines.append(deadline)
        return [play(p) for p in planned]


def exploration(settings: ExploreSettings, player: Player) -> Exploration:
    announced: list[str] = []
    done = explore(
        [READS, BROKEN, IDLE],
        settings,
        seed=5,
        run_round=player,
        announce=announced.append,
        should_stop=lambda: None,
    )
    assert announced[0] == "baseline: 3 test(s) run once without faults"
    return done


def test_rounds_go_as_deep_as_asked() -> None:
    player = Player()
    done = exploration(ExploreSettings(depth=2), player)
    assert [len(planned) for planned in player.rounds] == [3, 6, 6]
    assert {p.cell for p in player.rounds[0]} == {Cell()}
    assert done.unexplored == {
        BROKEN: "its run without faults failed",
        IDLE: "it touched nothing",
    }
    broke = {r.cell for r in done.results if r.outcome == BROKE}
    assert len(broke) == 5 and all(len(Cell.parse(c).faults) == 2 for c in broke)
    assert [r.size for r in done.rounds] == [0, 1, 2]


def test_a_run_budget_cuts_the_rounds() -> None:
    player = Player()
    done = exploration(ExploreSettings(budget=Budget(runs=8)), player)
    assert [len(planned) for planned in player.rounds] == [3, 6, 2]
    assert len(done.fault_runs) == 8
    assert done.rounds[2].pruned[BUDGET] == 4


def test_a_time_budget_reaches_the_rounds_and_stops_them() -> None:
    player = Player()
    started = time.time()
    exploration(ExploreSettings(budget=Budget(seconds=600)), player)
    assert all(d is not None and started + 600 <= d <= time.time() + 600 for d in player.deadlines)
    spent = Player()
    done = explore(
        [READS],
        ExploreSettings(budget=Budget(seconds=1e-9)),
        seed=5,
        run_round=spent,
        announce=lambda text: None,
        should_stop=lambda: None,
    )
    assert len(spent.rounds) == 1 and done.stopped == "the time budget is spent"


def test_exploring_stops_when_pytest_says_so() -> None:
    player = Player()
    done = explore(
        [READS],
        ExploreSettings(),
        seed=5,
        run_round=player,
        announce=lambda text: None,
        should_stop=lambda: "stopping after 1 failures",
    )
    assert len(player.rounds) == 1 and done.stopped == "stopping after 1 failures"


def test_nothing_to_explore_runs_no_round() -> None:
    player = Player()
    done = explore(
        [],
        ExploreSettings(),
        seed=5,
        run_round=player,
        announce=lambda text: None,
        should_stop=lambda: None,
    )
    assert done.results == [] and player.rounds == []
