"""What a session knows of its exploration (``--chaos-explore``): its mode, the runs asked
for on the command line, the results reported here; and how to tell a run's item. The
hooks (:mod:`pytest_chaos.plugin.explore`), the rounds and the judging of runs share it.

A session is in one of four modes:

- *exploring* (``--chaos-explore``, tests named the usual way): this process collects the
  tests, then makes the rounds in child sessions (pytest-xdist, if asked for, runs there)
  and replays their reports into its own hooks, as pytest-xdist's controller does;
- *running cells* (node ids with an explore id, as a replay command or a round's child
  gives them): those runs are made here, as items parametrized by their cell;
- *opted in*: without ``--chaos-explore``, the tests marked ``explore=True`` are explored
  as above once the other tests have run here;
- *off*: nothing of exploration acts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, final

import pytest

from pytest_chaos.explore.cells import split_name

if TYPE_CHECKING:
    from pytest_chaos.explore.cells import Cell
    from pytest_chaos.explore.feed import FeedWriter
    from pytest_chaos.explore.outcome import CellResult
    from pytest_chaos.explore.results import Findings
    from pytest_chaos.explore.rounds import Exploration
    from pytest_chaos.explore.run import CellRun

CELL_FIXTURE = "_chaos_explore_cell"
FEED_OPTION = "--chaos-explore-feed"
DEADLINE_OPTION = "--chaos-explore-deadline"
#: The report attribute carrying a run's :class:`CellResult` (survives pytest-xdist).
REPORT_ATTRIBUTE = "chaos_explore"
EXPLORING, OPTED_IN, CELLS, OFF = "exploring", "opted in", "cells", "off"


@final
class ExploreState:
    """This session's exploration: its mode, the cells asked for on the command line
    (by test function), the results of the runs reported here, and the exploration."""

    def __init__(self, mode: str, requested: dict[tuple[Path, str], list[str]]) -> None:
        self.mode = mode
        self.requested = requested
        self.feed: FeedWriter | None = None
        self.deadline: float | None = None
        self.results: list[CellResult] = []
        self.exploration: Exploration | None = None
        self.findings: Findings | None = None
        #: The explored tests' items, by node id, for their markers.
        self.items: dict[str, pytest.Item] = {}


STATE = pytest.StashKey[ExploreState]()
#: Why a test that asks to be explored cannot be, here.
UNEXPLORABLE = pytest.StashKey[str]()
RUN: pytest.StashKey[CellRun] = pytest.StashKey()


def state(config: pytest.Config) -> ExploreState:
    """This session's exploration (off when pytest's main command did not run, as for a
    configuration made by ``pytester.parseconfigure``)."""
    return config.stash.setdefault(STATE, ExploreState(OFF, {}))


def is_child(config: pytest.Config) -> bool:
    """Whether this session makes a round for an exploring session (which keeps the
    evidence: this one writes none)."""
    return config.getoption("chaos_explore_feed", None) is not None


def is_cell(item: pytest.Item) -> bool:
    return cell_of(item) is not None


def cell_of(item: pytest.Item) -> Cell | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    cell: Cell | None = callspec.params.get(CELL_FIXTURE)
    return cell


def test_of(nodeid: str) -> str:
    """The explored test's node id: the run's without its explore id."""
    head, sep, last = nodeid.rpartition("::")
    return f"{head}{sep}{split_name(last)[0]}"
