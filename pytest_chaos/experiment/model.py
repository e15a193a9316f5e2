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
    from pytest_chaos.steady.load import Load

#: Seconds the load runs before a hypothesis with SLO probes is first checked, and after
#: the rollback before it is checked again, so that each window has requests to judge.
DEFAULT_SETTLE_S = 1.0


class ExperimentOptions(TypedDict, total=False):
    """What :meth:`Experiment.build` takes besides the title (and ``chaos.experiment``)."""

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
    ``rollback_strategy`` says)."""

    title: str
    steady_state: tuple[Probe, ...] = ()
    method: tuple[Fault, ...] = ()
    load: Load | None = None
    strategy: str = "default"
    frequency_s: float = 0.5
    halt: tuple[Probe, ...] = ()
    rollbacks: tuple[Callable[[], object], ...] = ()
    rollback_strategy: str = "always"
    duration_s: float | None = None
    settle_s: float | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        title: str,
        *,
        steady_state: Sequence[Probe] = (),
        method: Sequence[Fault] = (),
        load: Load | None = None,
        strategy: str = "default",
        frequency_s: float = 0.5,
        halt: Sequence[Probe] = (),
        rollbacks: Sequence[Callable[[], object]] = (),
        rollback_strategy: str = "always",
        duration_s: float | None = None,
        settle_s: float | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        body_is_method: bool = False,
    ) -> Experiment:
        """The experiment, every argument checked now: nothing starts if one is wrong.
        With ``body_is_method`` the method is a test's body, and faults without ``for_s``
        last as long as it runs."""
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"experiment title {title!r}: use a non-empty string")
        if description is not None and (not isinstance(description, str) or not description):
            raise ValueError(f"description={description!r}: use a non-empty string")
        if isinstance(tags, str) or not all(isinstance(tag, str) and tag for tag in tags):
            raise ValueError(f"tags={tags!r}: use a list of non-empty strings")
        strategy = runtime.hypothesis_strategy(strategy)
        rollback_strategy = runtime.rollback_strategy(rollback_strategy)
        _items("steady_state", steady_state, Probe, "probes (probes.http(...), probes.slo(...))")
        _items("method", method, Fault, "faults (faults.down(...), faults.latency(...))")
        _items("halt", halt, Probe, "probes")
        for probe in (*steady_state, *halt):
            probe.validate_steady()
        for rollback in rollbacks:
            if not callable(rollback):
                raise TypeError(f"rollbacks: {rollback!r} is not a function")
        if load is not None:
            from pytest_chaos.steady.load import Load as LoadType

            if not isinstance(load, LoadType):
                raise TypeError(f"load={load!r}: use a load (chaos.load.http(...), Load.tcp(...))")
        seconds("frequency_s", frequency_s, allow_zero=False)
        if duration_s is not None:
            seconds("duration_s", duration_s, allow_zero=True)
        if settle_s is not None:
            seconds("settle_s", settle_s, allow_zero=True)
        if duration_s is None and not body_is_method and any(f.for_s is None for f in method):
            open_ended = next(fault for fault in method if fault.for_s is None)
            raise ValueError(
                f"{open_ended.describe()} has no for_s: give it one, or give the experiment "
                "a duration_s for the method"
            )
        slo = any(isinstance(probe, SloProbe) for probe in (*steady_state, *halt))
        if slo and load is None:
            raise ValueError("probes.slo() judges the load's requests: give the experiment a load")
        return cls(
            title,
            tuple(steady_state),
            tuple(method),
            load,
            strategy,
            frequency_s,
            tuple(halt),
            tuple(rollbacks),
            rollback_strategy,
            duration_s,
            settle_s,
            description,
            tuple(tags),
        )

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
