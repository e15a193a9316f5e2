"""An experiment described: its hypothesis, its method (faults on a timeline), its load,
halt conditions and rollbacks, every option checked when it is built."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, final

from pytest_chaos.core.activity import provider_of
from pytest_chaos.core.checks import seconds
from pytest_chaos.experiment import strategies as runtime
from pytest_chaos.faults import Fault
from pytest_chaos.steady.probes import Probe
from pytest_chaos.steady.slo import SloProbe

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from pytest_chaos.steady.load import Load

#: Seconds the load runs before a hypothesis with SLO probes is first checked, and after
#: the rollback before it is checked again, so that each window has requests to judge.
DEFAULT_SETTLE_S = 1.0


class ExperimentOptions(TypedDict, total=False):
    """The keywords of ``chaos.experiment`` and :meth:`Experiment.build`: the fields of
    :class:`Experiment` besides the title, with the types callers may pass (a test holds the
    two to the same names)."""

    steady_state: Sequence[Probe]
    method: Sequence[Fault]
    load: Load | None
    strategy: str
    frequency_s: float
    halt: Sequence[Probe]
    rollbacks: Sequence[Callable[[], object]]
    rollback_strategy: str
    duration_s: float | None
    settle_s: float | None
    description: str | None
    tags: Sequence[str]


@final
@dataclass(frozen=True)
class Experiment:
    """An experiment described: its hypothesis (``steady_state`` probes), its ``method``
    (faults on a timeline), the ``load`` that runs throughout, when the hypothesis is
    checked (``strategy``, every ``frequency_s`` while it is watched), the ``halt``
    probes that stop everything when breached, and extra ``rollbacks`` (played as
    ``rollback_strategy`` says). Every option is checked when it is made: nothing starts if
    one is wrong. Its fields, with their defaults, are the options."""

    title: str
    steady_state: Sequence[Probe] = ()
    method: Sequence[Fault] = ()
    load: Load | None = None
    strategy: str = "default"
    frequency_s: float = 0.5
    halt: Sequence[Probe] = ()
    rollbacks: Sequence[Callable[[], object]] = ()
    rollback_strategy: str = "always"
    duration_s: float | None = None
    settle_s: float | None = None
    description: str | None = None
    tags: Sequence[str] = ()

    def __post_init__(self) -> None:
        title, description, tags = self.title, self.description, self.tags
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"experiment title {title!r}: use a non-empty string")
        if description is not None and (not isinstance(description, str) or not description):
            raise ValueError(f"description={description!r}: use a non-empty string")
        if isinstance(tags, str) or not all(isinstance(tag, str) and tag for tag in tags):
            raise ValueError(f"tags={tags!r}: use a list of non-empty strings")
        _items(
            "steady_state", self.steady_state, Probe, "probes (probes.http(...), probes.slo(...))"
        )
        _items("method", self.method, Fault, "faults (faults.down(...), faults.latency(...))")
        _items("halt", self.halt, Probe, "probes")
        for probe in (*self.steady_state, *self.halt):
            probe.validate_steady()
        for rollback in self.rollbacks:
            if not callable(rollback):
                raise TypeError(f"rollbacks: {rollback!r} is not a function")
        if self.load is not None:
            from pytest_chaos.steady.load import Load as LoadType

            if not isinstance(self.load, LoadType):
                raise TypeError(
                    f"load={self.load!r}: use a load (chaos.load.http(...), Load.tcp(...))"
                )
        seconds("frequency_s", self.frequency_s, allow_zero=False)
        if self.duration_s is not None:
            seconds("duration_s", self.duration_s, allow_zero=True)
        if self.settle_s is not None:
            seconds("settle_s", self.settle_s, allow_zero=True)
        slo = any(isinstance(probe, SloProbe) for probe in (*self.steady_state, *self.halt))
        if slo and self.load is None:
            raise ValueError("probes.slo() judges the load's requests: give the experiment a load")
        normal = {
            "strategy": runtime.hypothesis_strategy(self.strategy),
            "rollback_strategy": runtime.rollback_strategy(self.rollback_strategy),
            "steady_state": tuple(self.steady_state),
            "method": tuple(self.method),
            "halt": tuple(self.halt),
            "rollbacks": tuple(self.rollbacks),
            "tags": tuple(tags),
        }
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    @classmethod
    def build(
        cls, title: str, *, body_is_method: bool = False, **options: Unpack[ExperimentOptions]
    ) -> Experiment:
        """The experiment, every option checked now. With ``body_is_method`` the method is a
        test's body, and faults without ``for_s`` last as long as it runs; otherwise such a
        fault needs the experiment's ``duration_s``."""
        experiment = cls(title, **options)
        open_ended = [fault for fault in experiment.method if fault.for_s is None]
        if experiment.duration_s is None and not body_is_method and open_ended:
            raise ValueError(
                f"{open_ended[0].describe()} has no for_s: give it one, or give the experiment "
                "a duration_s for the method"
            )
        return experiment

    @property
    def method_s(self) -> float:
        """How long the method is planned to last: ``duration_s``, or until the last fault
        ends on its timeline (it lasts longer when a busy machine applies a fault late)."""
        if self.duration_s is not None:
            return self.duration_s
        return max((f.start_after_s + (f.for_s or 0) for f in self.method), default=0.0)

    @property
    def settle(self) -> float:
        if self.settle_s is not None:
            return self.settle_s
        slo = any(isinstance(probe, SloProbe) for probe in self.steady_state)
        return DEFAULT_SETTLE_S if slo and self.load is not None else 0.0

    def phases(self) -> tuple[str, ...]:
        return runtime.HYPOTHESIS_STRATEGIES[self.strategy]

    def to_ctk(self) -> dict[str, Any]:
        """The experiment in Chaos Toolkit's format, as the journal carries it."""
        return {
            "version": "1.0.0",
            "title": self.title,
            "description": self.description or self.title,
            "tags": list(self.tags),
            "steady-state-hypothesis": {
                "title": self.description or self.title,
                "probes": [probe.to_activity() for probe in self.steady_state],
            },
            "method": [fault.to_activity() for fault in self.method],
            "rollbacks": [rollback_activity(step) for step in self.rollbacks],
            "runtime": {
                "hypothesis": {"strategy": self.strategy, "freq": self.frequency_s},
                "rollbacks": {"strategy": self.rollback_strategy},
            },
        }


def rollback_activity(step: Callable[[], object]) -> dict[str, Any]:
    return {
        "type": "action",
        "name": getattr(step, "__qualname__", None) or repr(step),
        "provider": provider_of(step),
    }


def _items(name: str, values: Sequence[object], kind: type, what: str) -> None:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name}={values!r}: use a list of {what}")
    for value in values:
        if not isinstance(value, kind):
            raise TypeError(f"{name}: {value!r} is not one of the {what}")
