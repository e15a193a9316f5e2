"""How a cell ended, and the record of one run that travels from where it ran (an xdist
worker, a child session) to the session that plans and reports the exploration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, final

from pytest_chaos.explore.cells import Cell
from pytest_chaos.explore.recording import Recording

HELD = "held"
BROKE = "broke"
HUNG = "hung"
EXPECTED = "expected"
#: The baseline failed without any fault: the test cannot be explored until it passes.
FAILED_BASELINE = "failed"
#: The baseline touched nothing the explorer can break.
UNTOUCHED = "untouched"
#: A cell the budget left out (in seconds: it would have started after the deadline), or
#: whose dependency did not appear.
NOT_RUN = "not run"
#: A run whose fixtures failed before any fault (so it says nothing of the faults).
ERROR = "error"
#: How cells end, best first: the order of the matrix's legend.
OUTCOMES = (HELD, EXPECTED, BROKE, HUNG, ERROR, NOT_RUN)
#: Outcomes in which the system did what it should: the held share counts these.
GOOD = (HELD, EXPECTED)


@final
@dataclass
class CellResult:
    """One run: the test it belongs to (its node id without the explore id), the cell,
    how it ended and why (``message``; ``where`` for a hung one), what it touched, the
    command that replays it, and the pytest-xdist worker that made it."""

    test: str
    cell: str
    nodeid: str
    outcome: str
    duration_s: float = 0.0
    message: str | None = None
    where: str | None = None
    expectation: str | None = None
    replay: str = ""
    worker: str | None = None
    recording: Recording = field(default_factory=Recording)

    @property
    def parsed(self) -> Cell:
        return Cell.parse(self.cell)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["recording"] = self.recording.to_json()
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellResult:
        fields = dict(data)
        fields["recording"] = Recording.from_json(fields.get("recording") or {})
        return cls(**fields)
