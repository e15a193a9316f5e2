"""An experiment's run on its own (no pytest session): strategies, the timeline, rollbacks,
outcomes and the journal, with real functions as probes and actions as faults."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest

from pytest_chaos import faults, probes
from pytest_chaos.experiment import (
    Deviated,
    Experiment,
    ExperimentRun,
    FaultFailed,
    Halted,
    NotSteady,
)
from pytest_chaos.faults.described import Unresolved


class Switch:
    """A piece of the system a fault breaks: an action flips it, the undo flips it back,
    and every change is logged with the time it happened."""

    def __init__(self) -> None:
        self.broken = False
        self.changes: list[tuple[str, float]] = []

    def breaks(self, name: str = "break", **timeline: Any) -> faults.Fault:
        return faults.action(name, apply=self._break, undo=self._repair, **timeline)

    def _break(self) -> None:
        self.broken = True
        self.changes.append(("broken", time.monotonic()))

    def _repair(self) -> None:
        self.broken = False
        self.changes.append(("repaired", time.monotonic()))

    def healthy(self) -> bool:
        return not self.broken


def run(experiment: Experiment) -> dict[str, Any]:
    return ExperimentRun(experiment, resolver=Unresolved(), seed=7).run()


@pytest.mark.parametrize(
    ("strategy", "before", "during", "after"),
    [
        ("default", True, False, True),
        ("before", True, False, False),
        ("after", False, False, True),
        ("during", False, True, False),
        ("continuously", True, True, True),
    ],
)
def test_strategies_check_the_hypothesis_when_they_say(
    strategy: str, before: bool, during: bool, after: bool
) -> None:
    journal = run(
        Experiment.build(
            "a healthy system",
            steady_state=[probes.call(lambda: True, name="always")],
            strategy=strategy,
            duration_s=0.35,
            frequency_s=0.1,
        )
    )
    states = journal["steady_states"]
    assert (states["before"] is not None, bool(states["during"]), states["after"] is not None) == (
        before,
        during,
        after,
    )
    assert journal["status"] == "completed" and journal["deviated"] is False


def test_faults_follow_their_timeline_and_are_rolled_back() -> None:
    """Each fault is applied after ``start_after_s`` and ended after ``for_s`` (never
    early); one without ``for_s`` lasts until the method ends."""
    first, second = Switch(), Switch()
    started = time.monotonic()
    journal = run(
        Experiment.build(
            "two faults",
            method=[
                first.breaks(start_after_s=0.1, for_s=0.2),
                second.breaks(start_after_s=0.2),
            ],
            duration_s=0.5,
        )
    )
    (broken_1, at_1), (repaired_1, end_1) = first.changes
    (broken_2, at_2), (repaired_2, end_2) = second.changes
    assert (broken_1, repaired_1, broken_2, repaired_2) == ("broken", "repaired") * 2
    assert at_1 - started >= 0.1 and end_1 - at_1 >= 0.2
    assert at_2 - started >= 0.2 and end_2 - started >= 0.5
    timeline = journal["pytest_chaos"]["timeline"]
    assert [entry["fault"] for entry in timeline] == [
        "action of break from 0.1 s for 0.2 s",
        "action of break from 0.2 s",
    ]
    assert all(entry["ended_at_s"] >= entry["applied_at_s"] for entry in timeline)
    assert len(journal["run"]) == 2 and len(journal["rollbacks"]) == 2


def test_without_a_duration_the_method_lasts_until_the_last_fault_ended() -> None:
    """A fault applied late (here an apply that takes 0.5 s, as a kill or a pause may on a
    busy machine) delays the faults after it, and the method waits for every one of them to
    be applied and to end on its own timeline, instead of stopping at the planned 0.2 s."""
    late = Switch()
    journal = run(
        Experiment.build(
            "a slow fault first",
            method=[
                faults.action("slow", apply=lambda: time.sleep(0.5), for_s=0.1),
                late.breaks("late", start_after_s=0.1, for_s=0.1),
            ],
        )
    )
    (broken, at), (repaired, end) = late.changes
    assert (broken, repaired) == ("broken", "repaired")
    assert end - at >= 0.1
    timeline = journal["pytest_chaos"]["timeline"]
    assert [entry["error"] for entry in timeline] == [None, None]
    assert all(entry["ended_at_s"] is not None for entry in timeline), timeline
    assert [run["activity"]["name"] for run in journal["rollbacks"]] == [
        "end action of slow for 0.1 s",
        "end action of late from 0.1 s for 0.1 s",
    ]


def test_a_deviation_during_the_method_fails_with_an_account() -> None:
    switch = Switch()
    with pytest.raises(Deviated) as raised:
        run(
            Experiment.build(
                "stays healthy",
                steady_state=[probes.call(switch.healthy, name="healthy")],
                method=[switch.breaks(start_after_s=0.05, for_s=0.4)],
                strategy="continuously",
                frequency_s=0.1,
            )
        )
    account = str(raised.value)
    assert "chaos experiment 'stays healthy' deviated from its steady state:" in account
    assert "during the method at t+" in account
    assert "healthy: Switch.healthy returned False" in account
    assert re.search(r"action of break from 0\.05 s for 0\.4 s: applied at t\+0\.\d\d s", account)
    assert "seed 7" in account
    journal = raised.value.journal
    assert (journal["status"], journal["deviated"]) == ("completed", True)
    assert journal["steady_states"]["after"]["steady_state_met"] is True


def test_a_system_not_steady_before_applies_no_fault() -> None:
    switch = Switch()
    with pytest.raises(NotSteady, match="not in steady state before chaos") as raised:
        run(
            Experiment.build(
                "never steady",
                steady_state=[probes.call(lambda: False, name="nope")],
                method=[switch.breaks(for_s=1)],
            )
        )
    assert switch.changes == []
    assert raised.value.journal["status"] == "failed"


def test_a_halt_ends_every_fault_at_once() -> None:
    switch = Switch()
    started = time.monotonic()
    with pytest.raises(Halted, match="every fault was rolled back") as raised:
        run(
            Experiment.build(
                "halts",
                method=[switch.breaks(for_s=30)],
                halt=[probes.call(switch.healthy, name="healthy")],
                frequency_s=0.1,
            )
        )
    assert [change for change, _ in switch.changes] == ["broken", "repaired"]
    halted = raised.value.journal["pytest_chaos"]["halted"]
    timeline = raised.value.journal["pytest_chaos"]["timeline"]
    assert timeline[0]["ended_at_s"] <= halted["breached_at_s"] + 0.1
    assert switch.changes[-1][1] - started < 30  # ended by the halt, not by its for_s
    assert raised.value.journal["status"] == "aborted"


def test_rollbacks_run_when_the_method_raises() -> None:
    """A fault that cannot be applied fails the experiment; the others are rolled back
    and the experiment's own rollbacks run all the same."""
    switch, rolled = Switch(), []

    def explode() -> None:
        raise RuntimeError("cannot reach the chaos API")

    with pytest.raises(FaultFailed, match="cannot reach the chaos API"):
        run(
            Experiment.build(
                "breaks",
                method=[
                    switch.breaks(for_s=0.2),
                    faults.action("explode", apply=explode, for_s=0.2),
                ],
                rollbacks=[lambda: rolled.append("rolled back")],
            )
        )
    assert [change for change, _ in switch.changes] == ["broken", "repaired"]
    assert rolled == ["rolled back"]


def test_rollbacks_run_after_an_interrupt() -> None:
    """KeyboardInterrupt while the method runs (here from a fault's own action, as Ctrl-C
    would arrive): faults end, rollbacks run, the journal says interrupted."""
    switch, rolled = Switch(), []
    main = threading.main_thread()
    assert threading.current_thread() is main

    def interrupt() -> None:
        import _thread

        _thread.interrupt_main()

    experiment_run = ExperimentRun(
        Experiment.build(
            "interrupted",
            method=[switch.breaks(for_s=5), faults.action("ctrl-c", apply=interrupt, for_s=5)],
            rollbacks=[lambda: rolled.append("yes")],
        ),
        resolver=Unresolved(),
    )
    with pytest.raises(KeyboardInterrupt):
        experiment_run.run()
    assert [change for change, _ in switch.changes] == ["broken", "repaired"]
    assert rolled == ["yes"]
    assert experiment_run.journal["status"] == "interrupted"


def test_the_journal_is_json_and_chaos_toolkit_shaped() -> None:
    switch = Switch()
    journal = run(
        Experiment.build(
            "shape",
            steady_state=[probes.call(switch.healthy, name="healthy")],
            method=[switch.breaks(for_s=0.1)],
            description="the system stays healthy",
            tags=["smoke"],
        )
    )
    text = json.dumps(journal)
    assert json.loads(text) == journal
    experiment = journal["experiment"]
    assert experiment["title"] == "shape"
    assert experiment["description"] == "the system stays healthy"
    assert experiment["tags"] == ["smoke"]
    [probe] = experiment["steady-state-hypothesis"]["probes"]
    assert probe["type"] == "probe" and probe["name"] == "healthy"
    [action] = experiment["method"]
    assert action["type"] == "action" and action["provider"]["func"] == "_break"
    before = journal["steady_states"]["before"]
    assert before["steady_state_met"] is True
    assert before["probes"][0]["tolerance_met"] is True
    assert journal["pytest_chaos"]["seed"] == 7


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"strategy": "often"}, "strategy='often': use one of default, before, after"),
        ({"steady_state": [lambda: True]}, "is not one of the probes"),
        ({"steady_state": probes.call(lambda: True)}, "use a list of probes"),
        ({"method": ["kill redis"]}, "is not one of the faults"),
        ({"method": [faults.action("x", apply=print)]}, "has no for_s"),
        ({"frequency_s": 0}, "frequency_s=0: use a number of seconds"),
        ({"duration_s": -1}, "duration_s=-1"),
        ({"steady_state": [probes.slo(p99_ms_max=100)]}, "give the experiment a load"),
        ({"rollbacks": ["undo"]}, "'undo' is not a function"),
        ({"load": "http://x"}, "load='http://x': use a load"),
    ],
)
def test_bad_experiments_are_refused_before_anything_runs(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        Experiment.build("bad", **arguments)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: faults.down("db", for_s=0), "for_s=0: use a number of seconds, more than 0"),
        (lambda: faults.down("db", start_after_s=-1), "start_after_s=-1"),
        (lambda: faults.http("teapot", 418), "http('teapot'): use one of status"),
        (lambda: faults.action("x", apply="rm -rf"), "apply and undo must be functions"),
    ],
)
def test_bad_faults_are_refused_when_described(make: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        make()


def test_a_fault_description_is_a_context_manager_in_a_plain_test() -> None:
    switch = Switch()
    with switch.breaks():
        assert switch.broken
    assert not switch.broken


def test_a_fault_that_names_its_target_needs_an_experiment() -> None:
    fault = faults.down("redis")
    with pytest.raises(ValueError, match=r"outside chaos\.experiment give the handle itself"):
        fault.__enter__()
