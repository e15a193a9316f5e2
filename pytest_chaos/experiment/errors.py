"""How an experiment ends when it does not pass: each exception carries the journal."""

from __future__ import annotations

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.experiment.journal import Journal


class ExperimentError(ChaosError):
    """Base of the exceptions an experiment ends with; ``journal`` is its journal."""

    def __init__(self, message: str, journal: Journal) -> None:
        super().__init__(message)
        self.journal = journal


class NotSteady(ExperimentError):
    """The steady state did not hold before the faults: the test errors, it cannot pass."""


class Deviated(ExperimentError, AssertionError):
    """The hypothesis did not hold during or after the faults: the test fails."""


class Halted(ExperimentError, AssertionError):
    """A halt condition was breached: every fault was rolled back at once; the test fails."""


class FaultFailed(ExperimentError):
    """A fault of the method could not be applied: the experiment proves nothing."""
