"""Cell ids name a run completely, so that a run can be replayed from its id alone."""

from __future__ import annotations

import pytest

from pytest_chaos.explore.cells import Cell, CellError, Dependency, FaultRef, split_name
from pytest_chaos.explore.replay import cell_nodeid, replay_command

PAYMENTS = Dependency("link", "payments")


def test_a_cell_reads_back_from_its_id() -> None:
    cell = Cell.of(
        FaultRef(Dependency("process", "redis"), "kill"),
        FaultRef(Dependency("http", "POST payments/charges"), "503"),
        FaultRef(Dependency("call", "shop.store.Store.add"), "OperationalError#2"),
    )
    assert Cell.parse(cell.id) == cell
    assert cell.id == (
        "explore:call:shop.store.Store.add:OperationalError#2"
        "+http:POST payments/charges:503+process:redis:kill"
    )


def test_names_with_reserved_characters_survive() -> None:
    odd = FaultRef(Dependency("link", "a+b[1]:50%"), "down")
    cell = Cell.of(odd)
    assert "+" not in cell.id.removeprefix("explore:link:").partition(":down")[0]
    assert "[" not in cell.id and "]" not in cell.id
    assert Cell.parse(cell.id) == cell


def test_the_order_of_faults_does_not_matter() -> None:
    a, b = FaultRef(PAYMENTS, "down"), FaultRef(Dependency("link", "redis"), "reset")
    assert Cell.of(a, b) == Cell.of(b, a)
    assert Cell.of(a, b).id == Cell.of(b, a).id


def test_a_dependency_fails_one_way_at_a_time() -> None:
    with pytest.raises(CellError, match="one way"):
        Cell.of(FaultRef(PAYMENTS, "down"), FaultRef(PAYMENTS, "reset"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("baseline", "not an explore id"),
        ("explore:", "names no fault"),
        ("explore:link:payments", "KIND:DEPENDENCY:FAULT"),
        ("explore:socket:payments:down", "not one of link, http, process, call"),
        ("explore:link::down", "KIND:DEPENDENCY:FAULT"),
    ],
)
def test_bad_ids_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(CellError, match=message):
        Cell.parse(text)


@pytest.mark.parametrize(
    ("name", "base", "explore_id"),
    [
        ("test_x[explore:baseline]", "test_x", "explore:baseline"),
        ("test_x[1-2-explore:link:a-b:down]", "test_x[1-2]", "explore:link:a-b:down"),
        ("test_x[1]", "test_x[1]", None),
        ("test_x", "test_x", None),
    ],
)
def test_the_explore_id_is_the_last_parameter(name: str, base: str, explore_id: str | None) -> None:
    assert split_name(name) == (base, explore_id)


def test_node_ids_and_replay_commands() -> None:
    assert cell_nodeid("t.py::test_x", "explore:baseline") == "t.py::test_x[explore:baseline]"
    assert cell_nodeid("t.py::C::test_x[a]", "explore:baseline") == (
        "t.py::C::test_x[a-explore:baseline]"
    )
    command = replay_command(
        7, "t.py::test_x[explore:http:GET a/b:503]", ["--chaos-explore-latency", "50"]
    )
    assert command == (
        "pytest --chaos-explore --chaos-seed 7 --chaos-explore-latency 50 "
        "'t.py::test_x[explore:http:GET a/b:503]'"
    )
