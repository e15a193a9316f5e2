"""Game days: a plan's chaos suite repeated with fresh seeds against real targets, halted
when a condition is breached, and reported beside the history of earlier runs."""

from __future__ import annotations

from pytest_chaos.gameday.history import HistoryError, RepetitionRecord, RunRecord
from pytest_chaos.gameday.plan import (
    Halt,
    HaltProbe,
    Plan,
    PlanError,
    Schedule,
    Suite,
    Targets,
    load,
)
from pytest_chaos.gameday.run import GameDay, GameDayError, Repetition, draw_seeds, run
from pytest_chaos.gameday.schedule import ScheduleError, crontab_line, github_workflow

__all__ = [
    "GameDay",
    "GameDayError",
    "Halt",
    "HaltProbe",
    "HistoryError",
    "Plan",
    "PlanError",
    "Repetition",
    "RepetitionRecord",
    "RunRecord",
    "Schedule",
    "ScheduleError",
    "Suite",
    "Targets",
    "crontab_line",
    "draw_seeds",
    "github_workflow",
    "load",
    "run",
]
