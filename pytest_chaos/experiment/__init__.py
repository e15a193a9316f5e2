"""Experiments: the model (:mod:`.model`, an experiment described and checked), the run
(:mod:`.run`), the journal (:mod:`.journal`, its one writer and reader) and how a run ends
(:mod:`.errors`). Names are imported on first use, so that importing an exception stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "Deviated": "errors",
    "ExperimentError": "errors",
    "FaultFailed": "errors",
    "Halted": "errors",
    "NotSteady": "errors",
    "Experiment": "model",
    "ExperimentOptions": "model",
    "ExperimentRun": "run",
    "Journal": "journal",
    "read_journal": "journal",
    "write_journal": "journal",
}

__all__ = [
    "Deviated",
    "Experiment",
    "ExperimentError",
    "ExperimentOptions",
    "ExperimentRun",
    "FaultFailed",
    "Halted",
    "Journal",
    "NotSteady",
    "read_journal",
    "write_journal",
]

if TYPE_CHECKING:
    from pytest_chaos.experiment.errors import (
        Deviated,
        ExperimentError,
        FaultFailed,
        Halted,
        NotSteady,
    )
    from pytest_chaos.experiment.journal import Journal, read_journal, write_journal
    from pytest_chaos.experiment.model import Experiment, ExperimentOptions
    from pytest_chaos.experiment.run import ExperimentRun


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
