"""The run of an experiment: prove the steady state, inject faults on a timeline while
traffic flows, watch the hypothesis during and after, roll back whatever happened, and keep
the journal.

The vocabulary is Chaos Toolkit's (probes, tolerances, hypothesis and rollback strategies, a
journal its library validates); the outcomes are a test's: not steady before the faults is an error,
a deviation or a halt is a failure with an account of what deviated, when and by how much.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, final

from pytest_chaos.experiment import strategies as runtime
from pytest_chaos.experiment.errors import Deviated, FaultFailed, Halted, NotSteady
from pytest_chaos.experiment.journal import (
    Journal,
    hypothesis_status,
    new_journal,
    probe_record,
    run_record,
    timed_run,
)
from pytest_chaos.experiment.model import Experiment, rollback_activity
from pytest_chaos.faults import Ending, Fault, Resolver
from pytest_chaos.steady.probes import Probe, ProbeContext, ProbeRun
from pytest_chaos.steady.slo import SloProbe

if TYPE_CHECKING:
    from pytest_chaos.steady.load import RunningLoad


@dataclass
class _Scheduled:
    """One fault on the timeline, and what became of it."""

    fault: Fault
    ending: Ending | None = None
    applied_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    end_error: str | None = None
    run: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Deviation:
    phase: str
    at_s: float | None
    run: ProbeRun

    def describe(self) -> str:
        when = f" at t+{self.at_s:.2f} s" if self.at_s is not None else ""
        return f"{self.phase}{when}: {self.run.explain()}"


@final
class ExperimentRun:
    """Runs one experiment and keeps its journal. :meth:`run` does everything; the phases
    are also separate (:meth:`before`, :meth:`method`, :meth:`after`, :meth:`finish`) so
    that a test's own body can be the method."""

    def __init__(
        self,
        experiment: Experiment,
        *,
        resolver: Resolver,
        seed: int | None = None,
        replay: str | None = None,
        dry_run: bool = False,
        extra: Callable[[], dict[str, Any]] | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        self.experiment = experiment
        self._on_phase = on_phase
        self.resolver = resolver
        self.seed = seed
        self.replay = replay
        self.dry_run = dry_run
        self._extra = extra
        self.journal: Journal = new_journal(experiment.to_ctk())
        self._started = time.monotonic()
        self._method_started: float | None = None
        self._method_ended: float | None = None
        self._scheduled = [_Scheduled(fault) for fault in experiment.method]
        self._deviations: list[_Deviation] = []
        self._halted: _Deviation | None = None
        self._halt_event = threading.Event()
        self._stop_event = threading.Event()
        self._timeline_over = threading.Event()  # every fault applied and ended, or halted
        self._lock = threading.Lock()
        self._load: RunningLoad | None = None
        self._faults_ended = False

    # -- the whole experiment --------------------------------------------------------------

    def run(self) -> Journal:
        """Everything: :meth:`execute`, then :meth:`finish`. Returns the journal, or raises
        NotSteady, Halted or Deviated with it."""
        __tracebackhide__ = True
        try:
            self.execute()
        except BaseException as error:
            self.finish(error)
            raise
        self.finish(None)
        return self.journal

    def execute(self) -> None:
        """Before, the method (faults on their timeline, load, watched hypothesis, for
        ``method_s`` or until halted), rollback, after; the outcome is :meth:`finish`'s."""
        self.before()
        with self.method():
            if self.experiment.duration_s is None:
                # until the last fault has ended, however late a busy machine applied it
                self._timeline_over.wait()
            else:
                end = self._method_started_or_now() + self.experiment.duration_s
                self._halt_event.wait(max(0.0, end - time.monotonic()))
        self.after()

    def _phase(self, phase: str) -> None:
        if self._on_phase is not None:
            self._on_phase(phase)

    def _method_started_or_now(self) -> float:
        return self._method_started if self._method_started is not None else time.monotonic()

    # -- phases ------------------------------------------------------------------------------

    def before(self) -> None:
        """Start the load, let it settle, and check the hypothesis (unless the strategy
        skips it); raise NotSteady when it does not hold."""
        __tracebackhide__ = True
        if self.experiment.load is not None:
            self._load = self.experiment.load.start()
        if "before" not in self.experiment.phases():
            return
        self._phase("steady state before")
        self._settle()
        since = self._started
        state = self._check(self.experiment.steady_state, "before", since)
        self.journal["steady_states"]["before"] = state
        if not state["steady_state_met"]:
            raise NotSteady(self._account("not in steady state before chaos"), self.journal)

    @contextmanager
    def method(self) -> Iterator[None]:
        """The method: the faults applied on their timeline by a conductor thread, the
        hypothesis and the halt probes watched by an observer thread; the body of the
        ``with`` runs meanwhile. Every fault is rolled back on the way out, whatever
        happened."""
        self._method_started = time.monotonic()
        self._phase(f"method: {len(self._scheduled)} fault(s) on their timeline")
        conductor = threading.Thread(target=self._conduct, name="chaos-conductor", daemon=True)
        observer = threading.Thread(target=self._observe, name="chaos-observer", daemon=True)
        conductor.start()
        observer.start()
        try:
            yield
        finally:
            self._method_ended = time.monotonic()
            self._stop_event.set()
            conductor.join()
            observer.join()
            self.end_faults()

    def end_faults(self) -> None:
        """End every fault still on (newest first), whatever the rollback strategy; each
        ending runs even if another failed, and is journaled."""
        if self._faults_ended:
            return
        self._faults_ended = True
        self._phase("rollback")
        for item in reversed(self._scheduled):
            self._end(item)
        for item in self._scheduled:
            if item.run:
                self.journal["run"].append(item.run)

    def _play_rollbacks(self) -> None:
        """The experiment's own rollbacks, in order, if its rollback strategy plays them
        now that the status and the deviation are known (Chaos Toolkit plays them after
        the hypothesis was checked after the method, as here)."""
        journal = self.journal
        strategy = self.experiment.rollback_strategy
        if not runtime.plays_rollbacks(strategy, journal["status"], journal["deviated"]):
            return
        for step in self.experiment.rollbacks:
            journal["rollbacks"].append(timed_run(rollback_activity(step), step))

    def after(self) -> None:
        """Let the system settle, then check the hypothesis again (unless the strategy
        skips it); a deviation is remembered for :meth:`finish`."""
        self._judge_method_window()
        if self._halted is not None or "after" not in self.experiment.phases():
            return
        since = time.monotonic()
        self._phase("steady state after")
        self._settle()
        state = self._check(self.experiment.steady_state, "after", since)
        self.journal["steady_states"]["after"] = state

    def _judge_method_window(self) -> None:
        """Judge the SLO probes once more over every request sent during the method, once
        those still in flight when it ended (a hung request, say) have finished: checks
        made while a fault is on cannot count requests that have not come back yet."""
        load, started, ended = self._load, self._method_started, self._method_ended
        slo = [probe for probe in self.experiment.steady_state if isinstance(probe, SloProbe)]
        if load is None or started is None or ended is None or not slo:
            return
        if self._halted is not None or "during" not in self.experiment.phases():
            return
        deadline = time.monotonic() + load.load.target.deadline_s
        while not load.finished_before(ended) and time.monotonic() < deadline:
            time.sleep(0.02)
        state = self._check(slo, "during", started, until=ended)
        self.journal["steady_states"]["during"].append(state)

    def finish(self, error: BaseException | None) -> None:
        """Stop the load, close the journal, and raise what the outcome calls for (an
        error raised by the run itself takes precedence and is re-raised by the caller)."""
        __tracebackhide__ = True
        with suppress(Exception):
            self.end_faults()
        if self._load is not None:
            self._load.stop()
        journal = self.journal
        journal["status"] = self._status(error)
        if error is not None and not isinstance(error, (KeyboardInterrupt, NotSteady)):
            journal["pytest_chaos"]["error"] = f"{type(error).__name__}: {error}"
        journal["deviated"] = bool(self._deviations) and not isinstance(error, NotSteady)
        self._play_rollbacks()
        self._close_journal()
        if error is not None:
            return
        if self._failed_faults():
            raise FaultFailed(self._account("could not apply or end its faults"), journal)
        if self._halted is not None:
            raise Halted(self._account("halted"), journal)
        if self._deviations:
            raise Deviated(self._account("deviated from its steady state"), journal)

    def _status(self, error: BaseException | None) -> str:
        """The journal's status, by Chaos Toolkit's rules where it has them: a hypothesis
        not met (before, or after the method) leaves the experiment ``completed`` unless one
        of its probes could not run at all, which makes it ``failed``."""
        states = self.journal["steady_states"]
        if isinstance(error, KeyboardInterrupt):
            return "interrupted"
        if isinstance(error, NotSteady):
            return hypothesis_status(states["before"])
        if error is not None:
            return "failed"
        if self._halted is not None:
            return "aborted"
        if self._failed_faults():
            return "failed"
        after = states["after"]
        if after is not None and not after["steady_state_met"]:
            return hypothesis_status(after)
        return "completed"

    def _failed_faults(self) -> list[_Scheduled]:
        return [item for item in self._scheduled if item.error or item.end_error]

    # -- the conductor: faults on their timeline ------------------------------------------

    def _conduct(self) -> None:
        """Apply each fault at its ``start_after_s`` and end it ``for_s`` after it was
        actually applied (never early), until the method is stopped or halted."""
        try:
            self._run_timeline()
        finally:
            self._timeline_over.set()

    def _run_timeline(self) -> None:
        assert self._method_started is not None
        start = self._method_started
        events: list[tuple[float, int, int]] = []  # (when, 0 end / 1 apply, index)
        for index, item in enumerate(self._scheduled):
            if item.fault.start_after_s <= self.experiment.method_s or self._open_ended():
                heapq.heappush(events, (start + item.fault.start_after_s, 1, index))
        while events:
            moment, what, index = heapq.heappop(events)
            if self._wait_until(moment):
                return
            item = self._scheduled[index]
            if what == 0:
                self._end(item)
                continue
            self._apply(item)
            if item.fault.for_s is not None and item.applied_at is not None:
                heapq.heappush(events, (item.applied_at + item.fault.for_s, 0, index))

    def _open_ended(self) -> bool:
        """Whether the method lasts as long as a test's body (the declarative form)."""
        return self.experiment.duration_s is None and any(
            fault.for_s is None for fault in self.experiment.method
        )

    def _wait_until(self, moment: float) -> bool:
        """Wait for ``moment``; True if the method was stopped or halted first."""
        while True:
            if self._stop_event.is_set() or self._halt_event.is_set():
                return True
            left = moment - time.monotonic()
            if left <= 0:
                return False
            self._halt_event.wait(min(left, 0.05))

    def _apply(self, item: _Scheduled) -> None:
        with self._lock:
            item.applied_at = time.monotonic()
            started = datetime.now(timezone.utc)
            try:
                item.ending = item.fault.apply(self.resolver)
            except Exception as error:
                item.error = f"{type(error).__name__}: {error}"
            item.run = run_record(item.fault.to_activity(), started, item.error)

    def _end(self, item: _Scheduled) -> None:
        with self._lock:
            ending, item.ending = item.ending, None
            if ending is None:
                return
            started = datetime.now(timezone.utc)
            problem = None
            try:
                ending.end()
            except Exception as error:
                problem = f"{type(error).__name__}: {error}"
            item.ended_at = time.monotonic()
            item.end_error = problem
            activity = {**item.fault.to_activity(), "name": "end " + item.fault.describe()}
            self.journal["rollbacks"].append(run_record(activity, started, problem))

    # -- the observer: hypothesis during the method, and halt conditions ------------------

    def _observe(self) -> None:
        watch = "during" in self.experiment.phases()
        if not watch and not self.experiment.halt:
            return
        assert self._method_started is not None
        since = self._method_started
        while not self._stop_event.wait(self.experiment.frequency_s):
            if self.experiment.halt:
                state = self._check(self.experiment.halt, "halt", since)
                if not state["steady_state_met"]:
                    self._halt(state)
                    return
            if watch:
                state = self._check(self.experiment.steady_state, "during", since)
                self.journal["steady_states"]["during"].append(state)

    def _halt(self, state: dict[str, Any]) -> None:
        """A halt probe was breached: end every fault now, from this thread."""
        breached = next(run for run in state["_runs"] if not run.tolerance_met)
        self._halted = _Deviation("halt condition", state["_at_s"], breached)
        self.journal["pytest_chaos"]["halted"] = {
            "probe": breached.name,
            "checked_at_s": state["_at_s"],
            "breached_at_s": self._t(),
            "explanation": breached.explain(),
        }
        self._halt_event.set()
        for item in reversed(self._scheduled):
            self._end(item)

    # -- checks ------------------------------------------------------------------------------

    def _check(
        self, probes: Sequence[Probe], phase: str, since: float, until: float | None = None
    ) -> dict[str, Any]:
        """Run ``probes`` once over the load's requests in ``[since, until)``; their runs go
        to the journal's form of a state, deviations (outside the halt check) to the
        account."""
        window_open = phase in ("during", "halt") and until is None
        context = ProbeContext(metrics=self._metrics(since, until), window_open=window_open)
        at_s = self._t() if phase in ("during", "halt") else None  # when the check began
        runs = [probe.run(context) for probe in probes]
        if phase != "halt":
            with self._lock:
                self._deviations.extend(
                    _Deviation(f"{phase} the method", at_s, run)
                    for run in runs
                    if not run.tolerance_met
                )
        return {
            "steady_state_met": all(r.tolerance_met for r in runs),
            "probes": [probe_record(probe, r) for probe, r in zip(probes, runs, strict=True)],
            "_runs": runs,
            "_at_s": at_s,
        }

    def _metrics(self, since: float, until: float | None) -> Callable[[], Any] | None:
        load = self._load
        if load is None:
            return None
        return lambda: load.metrics(since=since, until=until)

    def _settle(self) -> None:
        if self._load is not None and self.experiment.settle:
            time.sleep(self.experiment.settle)

    def _t(self) -> float | None:
        if self._method_started is None:
            return None
        return round(time.monotonic() - self._method_started, 3)

    # -- the journal and the account -------------------------------------------------------

    def _close_journal(self) -> None:
        journal = self.journal
        journal["end"] = datetime.now(timezone.utc).isoformat()
        journal["duration"] = round(time.monotonic() - self._started, 3)
        for key in ("before", "after"):
            state = journal["steady_states"][key]
            if state is not None:
                state.pop("_runs", None)
                state.pop("_at_s", None)
        for state in journal["steady_states"]["during"]:
            state.pop("_runs", None)
            state["at_s"] = state.pop("_at_s", None)
        ours = journal["pytest_chaos"]
        ours["seed"] = self.seed
        ours["replay"] = self.replay
        ours["dry_run"] = self.dry_run
        ours["timeline"] = [self._timeline_entry(item) for item in self._scheduled]
        ours["deviations"] = [
            {"phase": d.phase, "at_s": d.at_s, "probe": d.run.name, "explanation": d.run.explain()}
            for d in self._deviations
        ]
        if self._load is not None:
            metrics = self._load.metrics()
            ours["load"] = {**metrics.summary(), "per_second": metrics.per_second()}
            if metrics.start is not None and self._method_started is not None:
                # where t+0 of the timeline falls in the per-second series, for charts
                ours["load"]["method_started_s"] = round(self._method_started - metrics.start, 3)
        if self._extra is not None:
            ours.update(self._extra())

    def _timeline_entry(self, item: _Scheduled) -> dict[str, Any]:
        def offset(moment: float | None) -> float | None:
            if moment is None or self._method_started is None:
                return None
            return round(moment - self._method_started, 3)

        return {
            "fault": item.fault.describe(),
            "kind": item.fault.kind,
            "target": item.fault.target,
            "start_after_s": item.fault.start_after_s,
            "for_s": item.fault.for_s,
            "applied_at_s": offset(item.applied_at),
            "ended_at_s": offset(item.ended_at),
            "error": item.error,
            "end_error": item.end_error,
        }

    def _account(self, what: str) -> str:
        """The failure message: which probe deviated, when, by how much, what the faults
        and the load did, and how to replay it."""
        lines = [f"chaos experiment {self.experiment.title!r} {what}:"]
        if self._halted is not None:
            lines.append(f"  {self._halted.describe()}; every fault was rolled back")
        lines.extend(f"  {line}" for line in _grouped(self._deviations))
        applied = [item for item in self._scheduled if item.applied_at is not None]
        if applied:
            lines.append("  faults:")
            for item in applied:
                entry = self._timeline_entry(item)
                ended = entry["ended_at_s"]
                when = f"applied at t+{entry['applied_at_s']:.2f} s" + (
                    f", ended at t+{ended:.2f} s" if ended is not None else ""
                )
                problem = f" (failed: {item.error})" if item.error else ""
                if item.end_error:
                    problem += f" (could not end it: {item.end_error})"
                lines.append(f"    {item.fault.describe()}: {when}{problem}")
        if self._load is not None:
            metrics = self._load.metrics()
            p99 = metrics.p99_ms
            shown = f"{p99:.0f} ms" if p99 is not None else "-"
            lines.append(
                f"  load: {metrics.count} requests, {metrics.error_rate:.1%} errors, p99 {shown}"
            )
        if self.seed is not None:
            replay = f"; replay: {self.replay}" if self.replay else ""
            lines.append(f"  seed {self.seed}{replay}")
        return "\n".join(lines)


def _grouped(deviations: Sequence[_Deviation]) -> list[str]:
    """A line per probe and phase: its first deviation, and how often it deviated again
    (a watched hypothesis deviates at every check while a fault lasts)."""
    first: dict[tuple[str, str], _Deviation] = {}
    repeats: dict[tuple[str, str], list[_Deviation]] = {}
    for deviation in deviations:
        key = (deviation.phase, deviation.run.name)
        if key in first:
            repeats[key].append(deviation)
        else:
            first[key] = deviation
            repeats[key] = []
    lines = []
    for key, deviation in first.items():
        line = deviation.describe()
        more = repeats[key]
        if more:
            last = more[-1].at_s
            until = f", last at t+{last:.2f} s" if last is not None else ""
            line += f" (and {len(more)} more checks{until})"
        lines.append(line)
    return lines
