"""Releases between real service instances (processes), through the router, under load and
injected faults: canary promotions and rollbacks, the kill switch, blue-green and rolling."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import probes
from pytest_chaos.canary.fixture import Canary
from pytest_chaos.canary.judge import StatisticalJudge
from pytest_chaos.canary.rollout import CanaryRollout
from pytest_chaos.proxy.tracked import ChaosToxiproxy
from pytest_chaos.services import ProcessService, ServiceManager
from pytest_chaos.steady.load import Load

APP = str(Path(__file__).with_name("app.py"))
#: Requests per stage: at 200/s a stage lasts 1.5 s; at 1% the canary gets ~3 of them, so
#: the early stages are inconclusive and the judge speaks once it has 50 on each side.
STAGE = 300


def version(service: ServiceManager, name: str, *options: str) -> ProcessService:
    """A version of the app, started and ready."""
    argv = [sys.executable, APP, "--port", "{port}", "--version", name, *options]
    return service.process(name, argv, ready=probes.http("/health"))


def traffic(router: Any) -> Any:
    """Steady load through the router while a release runs (stopped by the with block)."""
    return Load.http(router.url + "/", rps=200, duration_s=120, timeout=2).start()


def judge() -> StatisticalJudge:
    return StatisticalJudge(min_samples=50)


def test_a_healthy_canary_is_promoted(service: ServiceManager, canary: Canary) -> None:
    """Equal versions with the same noise (jitter): promoted to 100%, never rolled back,
    although each judgement compares two noisy samples."""
    stable = version(service, "stable", "--delay-ms", "2", "--jitter-ms", "4", "--seed", "1")
    new = version(service, "canary", "--delay-ms", "2", "--jitter-ms", "4", "--seed", "2")
    router = canary.router({"stable": [stable.address], "canary": [new.address]})
    with traffic(router):
        result = canary.rollout(
            router, judge(), stage_requests=STAGE, max_consecutive_failures=2
        ).run()
    assert result.promoted, result.timeline
    assert [entry["percent"] for entry in result.timeline][-1] == 100
    assert router.weights() == {"stable": 0.0, "canary": 100.0}
    assert canary.results == [result]


def test_a_slow_canary_is_rolled_back_at_the_first_stage_with_enough_data(
    service: ServiceManager, canary: Canary, toxiproxy: ChaosToxiproxy
) -> None:
    """A latency fault on the canary's link (through the proxy): the early stages are
    inconclusive (too few canary requests), and the first stage where both sides have
    enough requests fails and rolls back to 0%."""
    stable = version(service, "stable", "--delay-ms", "2")
    new = version(service, "canary", "--delay-ms", "2")
    link = toxiproxy.proxy("canary", upstream=new.address)
    link.latency(ms=40)
    router = canary.router({"stable": [stable.address], "canary": [link.listen]})
    with traffic(router):
        result = canary.rollout(router, judge(), stage_requests=STAGE).run()
    assert result.rolled_back, result.timeline
    verdicts = [entry["verdict"] for entry in result.timeline]
    assert [v["outcome"] for v in verdicts[:-1]] == ["inconclusive"] * (len(verdicts) - 1)
    assert verdicts[-1]["outcome"] == "fail"
    assert verdicts[-1]["canary_count"] >= 50
    assert all(v["canary_count"] < 50 for v in verdicts[:-1])
    assert "latency" in result.reason
    assert router.weights()["canary"] == 0


def test_a_failing_canary_is_rolled_back(service: ServiceManager, canary: Canary) -> None:
    """A release that answers 500 to a fifth of requests: error rate is critical."""
    stable = version(service, "stable")
    new = version(service, "canary", "--error-rate", "0.2", "--seed", "3")
    router = canary.router({"stable": [stable.address], "canary": [new.address]})
    with traffic(router):
        result = canary.rollout(router, judge(), stage_requests=STAGE).run()
    assert result.rolled_back and "error" in result.reason, result.timeline
    assert result.timeline[-1]["verdict"]["outcome"] == "fail"


def test_the_kill_switch_rolls_back_mid_rollout(service: ServiceManager, canary: Canary) -> None:
    stable = version(service, "stable")
    new = version(service, "canary")
    router = canary.router({"stable": [stable.address], "canary": [new.address]})
    rollout: CanaryRollout = canary.rollout(router, judge(), stage_requests=STAGE)
    second_stage = threading.Event()

    def on_stage(entry: dict[str, Any]) -> None:
        if entry["stage"] == 2:
            rollout.kill()  # as an operator would, from anywhere
            second_stage.set()

    with traffic(router):
        result = rollout.run(on_stage=on_stage)
    assert second_stage.is_set()
    assert result.rolled_back and result.reason == "killed"
    assert [entry["action"] for entry in result.timeline] == ["advance", "advance", "rollback"]
    assert result.timeline[-1]["stage"] == 3  # stopped before stage 3 took any traffic
    assert router.weights()["canary"] == 0


def test_a_canary_killed_mid_rollout_is_rolled_back(
    service: ServiceManager, canary: Canary
) -> None:
    """A process fault during the release: the canary instance dies at stage 3; its
    requests fail (502 from the router) and the next judgement rolls back."""
    stable = version(service, "stable")
    new = version(service, "canary")
    router = canary.router({"stable": [stable.address], "canary": [new.address]})

    def on_stage(entry: dict[str, Any]) -> None:
        if entry["stage"] == 3:
            new.kill()

    with traffic(router):
        result = canary.rollout(
            router, judge(), stage_requests=STAGE, max_consecutive_failures=2
        ).run(on_stage=on_stage)
    assert result.rolled_back, result.timeline
    assert result.timeline[-1]["stage"] > 3  # the errors, critical, roll back at once
    assert router.counts()["canary"]["errors"] > 0


def test_blue_green_switches_without_a_failed_request(
    service: ServiceManager, canary: Canary
) -> None:
    blue = version(service, "blue")
    green = version(service, "green")
    router = canary.router({"blue": [blue.address], "green": [green.address]})
    with Load.http(router.url + "/", rps=200, count=600, timeout=2).start() as running:
        while len(router.observations()) < 200:
            threading.Event().wait(0.01)
        canary.switch(router, to="green", away="blue")
        while len(router.observations(pool="green")) < 200:
            threading.Event().wait(0.01)
        canary.switch(router, to="blue", away="green")
        running.wait()
    metrics = running.metrics()
    assert metrics.count == 600 and metrics.errors == 0
    counts = router.counts()
    assert counts["blue"]["requests"] > 0 and counts["green"]["requests"] >= 200
    assert [result.outcome for result in canary.results] == ["switched", "switched"]


def test_a_rolling_release_replaces_every_instance_with_the_hypothesis_held(
    service: ServiceManager, canary: Canary
) -> None:
    old = [version(service, f"v1-{i}") for i in range(2)]
    router = canary.router({"app": [instance.address for instance in old]})

    def start_new(index: int) -> ProcessService:
        return version(service, f"v2-{index}")

    with traffic(router) as running:
        result = canary.rolling(
            router,
            "app",
            old,
            start_new,
            max_surge=1,
            max_unavailable=0,
            steady_state=[probes.http(router.url + "/", name="app answers")],
        ).run()
        running.stop()
    assert result.outcome == "replaced", result.timeline
    assert all(entry["steady_state_met"] for entry in result.timeline)
    assert all(not instance.running for instance in old)
    assert running.metrics().errors == 0
    serving = result.timeline[-1]["serving"]
    assert len(serving) == 2 and not {instance.address for instance in old} & set(serving)
    assert max(len(entry["serving"]) for entry in result.timeline) <= 3  # max surge 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stages": (1, 5, 50)}, "stages=(1, 5, 50): use rising percentages"),
        ({"stages": (5, 1, 100)}, "use rising percentages"),
        ({"stage_requests": None}, "give stage_requests or stage_s"),
        ({"stage_requests": 0}, "stage_requests=0: use 1 or more"),
        ({"max_failures": 0}, "max_failures=0: use a whole number, 1 or more"),
    ],
)
def test_bad_rollouts_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CanaryRollout(object(), **options)  # type: ignore[arg-type]


def test_releases_go_to_the_experiment_journal(
    service: ServiceManager, canary: Canary, chaos: Any
) -> None:
    """A release made during an experiment (here, a blue-green switch as the method's
    action) is in the experiment's journal, with its timeline."""
    from pytest_chaos import faults

    blue = version(service, "blue")
    green = version(service, "green")
    router = canary.router({"blue": [blue.address], "green": [green.address]})
    journal = chaos.experiment(
        "switching keeps the app answering",
        steady_state=[probes.http(router.url + "/", name="app answers")],
        method=[
            faults.action(
                "switch to green",
                apply=lambda: canary.switch(router, to="green", away="blue"),
                for_s=0.2,
            )
        ],
    )
    [release] = journal["pytest_chaos"]["rollouts"]
    assert (release["kind"], release["outcome"]) == ("blue-green", "switched")
    assert release["timeline"][0]["to"] == "green"
    assert journal["steady_states"]["after"]["steady_state_met"]
