"""An experiment's run on its own (no pytest session): strategies, the timeline, rollbacks,
outcomes and the journal, with real functions as probes and actions as faults."""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import nullcontext
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
        ("before-method-only", True, False, False),
        ("after-method-only", False, False, True),
        ("during-method-only", False, True, False),
        ("continuously", True, True, True),
        ("skip", False, False, False),
        ("before", True, False, False),
        ("after", False, False, True),
        ("during", False, True, False),
        ("continously", True, True, True),
    ],
)
def test_strategies_check_the_hypothesis_when_they_say(
    strategy: str, before: bool, during: bool, after: bool
) -> None:
    """Chaos Toolkit's strategies (chaoslib.run's should_run_*_method), and the aliases
    (our first short names, the chaos command's old spelling), which the journal names by
    Chaos Toolkit's name."""
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
    canonical = {"before": "before-method-only", "after": "after-method-only"}
    canonical |= {"during": "during-method-only", "continously": "continuously"}
    runtime = journal["experiment"]["runtime"]["hypothesis"]
    assert runtime["strategy"] == canonical.get(strategy, strategy)


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


def broken() -> bool:
    raise ConnectionError("cannot measure")


@pytest.mark.parametrize(
    ("probe", "status"),
    [(lambda: False, "completed"), (broken, "failed")],
    ids=["out of tolerance", "probe raised"],
)
def test_a_system_not_steady_before_applies_no_fault(probe: Any, status: str) -> None:
    """As in Chaos Toolkit, the journal of an experiment stopped by its hypothesis says
    ``completed``, or ``failed`` when a probe could not run; it did not deviate."""
    switch = Switch()
    with pytest.raises(NotSteady, match="not in steady state before chaos") as raised:
        run(
            Experiment.build(
                "never steady",
                steady_state=[probes.call(probe, name="nope")],
                method=[switch.breaks(for_s=1)],
            )
        )
    assert switch.changes == []
    assert (raised.value.journal["status"], raised.value.journal["deviated"]) == (status, False)


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
                rollback_strategy="always",
            )
        )
    assert [change for change, _ in switch.changes] == ["broken", "repaired"]
    assert rolled == ["rolled back"]


def test_rollbacks_run_after_an_interrupt() -> None:
    """KeyboardInterrupt while the method runs (here from a fault's own action, as Ctrl-C
    would arrive): faults end, rollbacks run (under "always"), the journal says
    interrupted."""
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
            rollback_strategy="always",
        ),
        resolver=Unresolved(),
    )
    with pytest.raises(KeyboardInterrupt):
        experiment_run.run()
    assert [change for change, _ in switch.changes] == ["broken", "repaired"]
    assert rolled == ["yes"]
    assert experiment_run.journal["status"] == "interrupted"


def _scenario(name: str, switch: Switch) -> dict[str, Any]:
    """The parts of an experiment that give each journal status and deviation."""

    def raises_when_broken() -> bool:
        if switch.broken:
            raise ConnectionError("down")
        return True

    breaks_for_good = faults.action("break for good", apply=switch._break, for_s=0.05)
    if name == "held":
        return {
            "steady_state": [probes.call(switch.healthy)],
            "method": [switch.breaks(for_s=0.05)],
        }
    if name == "deviated":
        return {"steady_state": [probes.call(switch.healthy)], "method": [breaks_for_good]}
    if name == "after probe raised":
        return {"steady_state": [probes.call(raises_when_broken)], "method": [breaks_for_good]}
    if name == "not steady":
        return {"steady_state": [probes.call(lambda: False)], "duration_s": 0.05}
    if name == "not steady, probe raised":
        return {"steady_state": [probes.call(broken)], "duration_s": 0.05}
    if name == "halted":
        halt = [probes.call(switch.healthy)]
        return {"halt": halt, "method": [switch.breaks(for_s=30)], "frequency_s": 0.05}
    assert name == "interrupted"
    import _thread

    ctrl_c = faults.action("ctrl-c", apply=_thread.interrupt_main, for_s=5)
    return {"method": [ctrl_c]}


# Chaos Toolkit's rollback strategies (chaoslib.run.run_rollback): always, never, only when
# deviated, or by default unless the journal's status is failed or interrupted.
ROLLBACK_CASES = {
    # scenario: (status, deviated, played by default / always / never / deviated)
    "held": ("completed", False, (True, True, False, False)),
    "deviated": ("completed", True, (True, True, False, True)),
    "after probe raised": ("failed", True, (False, True, False, True)),
    "not steady": ("completed", False, (True, True, False, False)),
    "not steady, probe raised": ("failed", False, (False, True, False, False)),
    "halted": ("aborted", False, (True, True, False, False)),
    "interrupted": ("interrupted", False, (False, True, False, False)),
}


@pytest.mark.parametrize("scenario", list(ROLLBACK_CASES))
@pytest.mark.parametrize("strategy", ["default", "always", "never", "deviated"])
def test_rollback_strategies_play_the_rollbacks_as_chaos_toolkit_does(
    strategy: str, scenario: str
) -> None:
    """The experiment's own rollbacks are played after the hypothesis was checked after
    the method, as the strategy decides from the status and the deviation; faults end
    whatever the strategy."""
    switch, rolled = Switch(), []
    experiment = Experiment.build(
        scenario,
        rollbacks=[lambda: rolled.append("rolled back")],
        rollback_strategy=strategy,
        **_scenario(scenario, switch),
    )
    experiment_run = ExperimentRun(experiment, resolver=Unresolved())
    with (
        pytest.raises((KeyboardInterrupt, NotSteady, Deviated, Halted))
        if scenario != "held"
        else nullcontext()
    ):
        experiment_run.run()
    status, deviated, plays = ROLLBACK_CASES[scenario]
    journal = experiment_run.journal
    assert (journal["status"], journal["deviated"]) == (status, deviated)
    played = plays[["default", "always", "never", "deviated"].index(strategy)]
    assert rolled == (["rolled back"] if played else [])
    assert [run["activity"]["name"] for run in journal["rollbacks"]][len(journal["run"]) :] == (
        [experiment.rollbacks[0].__qualname__] if played else []
    )
    assert journal["experiment"]["runtime"]["rollbacks"] == {"strategy": strategy}
    assert all(
        entry["ended_at_s"] is not None
        for entry in journal["pytest_chaos"]["timeline"]
        if entry["applied_at_s"] is not None
    )


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
    assert action["type"] == "action"
    assert action["provider"]["arguments"] == {
        "callable": f"{__name__}.Switch._break"  # a method: named by the stand-in
    }
    before = journal["steady_states"]["before"]
    assert before["steady_state_met"] is True
    assert before["probes"][0]["tolerance_met"] is True
    assert journal["pytest_chaos"]["seed"] == 7


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"strategy": "often"},
            "strategy='often': use one of default, before-method-only, after-method-only, "
            "during-method-only, continuously, skip (or before, after, during, continously)",
        ),
        (
            {"rollback_strategy": "sometimes"},
            "rollback_strategy='sometimes': use one of default, always, never, deviated",
        ),
        ({"tags": ["smoke", ""]}, "tags=['smoke', '']: use a list of non-empty strings"),
        ({"steady_state": [probes.http("/health")]}, "has no host: give a full URL"),
        ({"steady_state": [probes.tcp()]}, "without address= needs a service"),
        ({"halt": [probes.log("ready")]}, "probes.log() reads a service's output"),
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
        (lambda: faults.action("x", apply="rm -rf"), "apply and undo must be functions"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: faults.action("", apply=print), "action(''): name the action"),
        # what a Toxiproxy server or the rule would refuse later is refused now
        (lambda: faults.latency("127.0.0.1:8474", ms=100), "that is an address; name the proxy"),
        (lambda: faults.latency("", ms=100), "faults.latency(''): name the proxy"),
        (lambda: faults.latency(object(), ms=100), "give the proxy's handle or its name"),
        (lambda: faults.latency("db", ms=-5), "faults.latency(ms=-5): use a whole number"),
        (lambda: faults.latency("db", ms=1.5), "faults.latency(ms=1.5): use a whole number"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: faults.latency("db", ms=1, jitter=None), "jitter=None): use a whole number"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: faults.latency("db", ms=1, stream="up"), "stream='up'): use 'upstream' or"),
        (lambda: faults.latency("db", ms=1, toxicity=2), "toxicity must be between 0 and 1"),
        (lambda: faults.bandwidth("db", kb_per_s=-1), "faults.bandwidth(kb_per_s=-1)"),
        (lambda: faults.timeout("db", ms="1s"), "faults.timeout(ms='1s')"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: faults.reset_peer("db", ms=-1), "faults.reset_peer(ms=-1)"),
        (lambda: faults.toxic("db", "jitter"), "faults.toxic(type='jitter'): use one of noop,"),
        (lambda: faults.toxic("db", "latency", ms=5), "unknown attribute 'ms' for toxic type"),
        (lambda: faults.down(42), "faults.down(42): give the proxy's handle or its name"),
        (lambda: faults.kill("localhost:6379"), "faults.kill('localhost:6379'): that is an"),
        (lambda: faults.stop("db", timeout_s=-1), "timeout_s=-1: use a number of seconds"),
        (lambda: faults.pause(None), "faults.pause(None): give the service's handle"),
        (lambda: faults.patch("charge", error=ValueError), "faults.patch('charge'): use a dotted"),
        (lambda: faults.patch("shop.pay", eror=ValueError), "unknown argument 'eror'; use error,"),
        (lambda: faults.http("status", 503, pth="/x"), "unknown argument 'pth'; use host, path"),
        (lambda: faults.http("status", 503, 504), "faults.http('status'): too many positional"),
        (lambda: faults.http("truncate", bytes=3), "unknown argument 'bytes'"),
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
