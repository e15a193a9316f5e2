"""One chaos test's result as the score, the terminal table and the reports read it: plain
data, carried as JSON on the test's report across pytest-xdist, built by the plugin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, final

from pytest_chaos.core.seeding import replay_command

#: The report attribute that carries a :class:`ChaosResult` as JSON across xdist.
REPORT_ATTRIBUTE = "chaos_result"
#: Verdicts, worst last; ``xfailed`` and ``skipped`` do not count in the score.
VERDICTS = ("passed", "deviated", "halted", "not steady", "failed", "error", "skipped", "xfailed")
#: Verdicts of an experiment that ran and found the system wanting: what gates may tolerate.
DEVIATIONS = ("deviated", "halted")


@final
@dataclass
class ChaosResult:
    """One chaos test's outcome, as the score, the terminal table and the reports see it.

    ``checks`` counts the steady-state probe checks of its experiments (before, during and
    after), ``passed`` those whose tolerance held; ``success_ratio`` is what the score
    weighs (LitmusChaos's probe success percentage, as a fraction).
    """

    nodeid: str
    verdict: str
    weight: int
    seed: int
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    checks_passed: int = 0
    checks_total: int = 0
    success_ratio: float = 0.0
    duration_s: float = 0.0
    message: str | None = None
    journals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def replay(self) -> str:
        return replay_command(self.seed, self.nodeid)

    @property
    def scored(self) -> bool:
        """Whether it counts in the score: skipped and expected failures do not."""
        return self.verdict not in ("skipped", "xfailed")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChaosResult:
        return cls(**data)


def count_checks(journals: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """Probe checks of the steady-state hypothesis that held, and that ran, over journals."""
    passed = total = 0
    for journal in journals:
        states = journal.get("steady_states") or {}
        for state in [states.get("before"), *(states.get("during") or []), states.get("after")]:
            for probe in (state or {}).get("probes") or []:
                total += 1
                passed += bool(probe.get("tolerance_met"))
    return passed, total
