"""Releases between real service instances (processes), through the router, under load and
injected faults: canary promotions and rollbacks, the kill switch, blue-green and rolling."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import probes
from pytest_chaos.canary.judge import Observation, StatisticalJudge, Verdict
from pytest_chaos.canary.rollout import CanaryRollout
from pytest_chaos.canary.router import Router
from pytest_chaos.plugin.canary import Canary
from pytest_chaos.proxy.tracked import ChaosToxiproxy
from pytest_chaos.services import ProcessService, ServiceManager
from pytest_chaos.steady.load import Load

APP = str(Path(__file__).with_name("app.py"))
#: Requests per stage: at 200/s a stage lasts 1.5 s; at 1% the canary gets ~3 of them, so
#: the early stages are inconclusive and the judge speaks once it has 50 on each side.
STAGE = 300
#: How long the load waits for an answer: far beyond what a loaded machine takes (p99 1.6 s
#: seen with both cores busy), so that a slow answer counts as slow, not as failed.
CLIENT_TIMEOUT = 15
#: Versions that answer in 2-6 ms.
NOISY = ("--delay-ms", "2", "--jitter-ms", "4")


def version(service: ServiceManager, name: str, *options: str) -> ProcessService:
    """A version of the app, started and ready."""
    argv = [sys.executable, APP, "--port", "{port}", "--version", name, *options]
    return service.process(name, argv, ready=probes.http("/health"))


def release(
    service: ServiceManager,
    canary: Canary,
    stable: Sequence[str] = (),
    new: Sequence[str] = (),
    suffix: str = "",
) -> Router:
    """A router between the stable version and the canary, each a process started with
    these options (``service["canary" + suffix]`` is the canary's)."""
    old = version(service, "stable" + suffix, *stable)
    started = version(service, "canary" + suffix, *new)
    return canary.router({"stable": [old.address], "canary": [started.address]})


def equal_versions(service: ServiceManager, canary: Canary) -> Router:
    """A router between two equal versions with the same noise (their own jitter seeds)."""
    return release(service, canary, (*NOISY, "--seed", "1"), (*NOISY, "--seed", "2"))


def traffic(router: Any) -> Any:
    """Steady load through the router while a release runs (stopped by the with block)."""
    return Load.http(router.url + "/", rps=200, duration_s=120, timeout=CLIENT_TIMEOUT).start()


def judge() -> StatisticalJudge:
    return StatisticalJudge(min_samples=50)


def test_a_healthy_canary_is_promoted(service: ServiceManager, canary: Canary) -> None:
    """Equal versions with the same noise (jitter): promoted to 100%, never rolled back,
    although each judgement compares two noisy samples."""
    router = equal_versions(service, canary)
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


def test_drift_over_time_does_not_roll_back_a_healthy_canary(
    service: ServiceManager, canary: Canary
) -> None:
    """Both versions slow down alike as the release goes on (3 ms more every second, as a
    machine getting busier would make them). The canary serves mostly late requests and the
    baseline mostly early ones, so judging everything since the start makes the canary look
    slower; compared window by window, it is promoted."""
    drift = ("--delay-ms", "2", "--jitter-ms", "4", "--slowdown-ms-per-s", "3")
    epoch = ("--epoch", repr(time.time()))
    router = release(
        service,
        canary,
        (*drift, *epoch, "--seed", "1"),
        (*drift, *epoch, "--seed", "2"),
    )
    with traffic(router):
        result = canary.rollout(router, stage_requests=STAGE).run()
    assert result.promoted, result.timeline
    last = max(entry["at_s"] for entry in result.timeline if "verdict" in entry)
    everything = since_the_start(router, last)
    assert everything.metric("latency").outcome == "fail", everything.reason


def test_drift_does_not_hide_a_real_regression(service: ServiceManager, canary: Canary) -> None:
    """The same drift, and a canary 10 ms slower than the baseline at every moment: rolled
    back on latency."""
    epoch = ("--epoch", repr(time.time()), "--slowdown-ms-per-s", "3", "--jitter-ms", "4")
    router = release(
        service,
        canary,
        ("--delay-ms", "2", *epoch, "--seed", "1"),
        ("--delay-ms", "12", *epoch, "--seed", "2"),
    )
    with traffic(router):
        result = canary.rollout(router, stage_requests=STAGE).run()
    assert result.rolled_back and "latency" in result.reason, result.timeline


def since_the_start(router: Any, until_s: float) -> Verdict:
    """The default judge on everything each pool served from the first request until
    ``until_s`` seconds later, in one window: how a rollout judged before issue 17."""
    served = router.observations()
    first = min(item.at for item in served)
    sides: dict[str, list[Observation]] = {"canary": [], "stable": []}
    for item in served:
        if item.at + item.latency_ms / 1000 <= first + until_s:
            sides[item.pool].append(Observation(item.latency_ms, item.ok))
    return StatisticalJudge().judge(sides["canary"], sides["stable"])


def test_the_canary_s_first_requests_are_its_warm_up(
    service: ServiceManager, canary: Canary
) -> None:
    """A canary whose first five requests fail (a cold start), then serves as well as the
    baseline: those requests are each stage's warm-up, left out of the judgement, and it
    is promoted. Judged from its first request on, the same start rolls it back."""
    results = []
    for warmup in (5, 0):
        router = release(
            service,
            canary,
            (),
            ("--fail-first", "5"),
            suffix=f"-{warmup}",
        )
        with traffic(router):
            rollout = canary.rollout(router, stage_requests=STAGE, warmup_requests=warmup)
            results.append(rollout.run())
        assert router.counts()["canary"]["errors"] == 5
    warm, cold = results
    assert warm.promoted, warm.timeline
    judged = [entry["verdict"]["metrics"][0] for entry in warm.timeline if "verdict" in entry]
    assert all(metric["canary"] in (None, 0.0) for metric in judged)  # no error judged
    assert cold.rolled_back and "error rate" in cold.reason, cold.timeline


def test_an_inconclusive_last_stage_is_extended_until_it_speaks(
    service: ServiceManager, canary: Canary
) -> None:
    """At 50% of 60 requests, about 25 canary requests are judged: too few (50 a side).
    The stage is extended by what the verdict asks for, then judged again and promoted."""
    router = equal_versions(service, canary)
    with traffic(router):
        result = canary.rollout(router, stages=(50, 100), stage_requests=60).run()
    assert result.promoted, result.timeline
    first, *_, judged, promotion = result.timeline
    assert first["action"] == "extend" and first["verdict"]["outcome"] == "inconclusive"
    needed = first["verdict"]["needed"]
    assert needed > 0 and f"needs {needed} more requests" in first["verdict"]["reason"]
    assert judged["verdict"]["outcome"] in ("pass", "marginal") and judged["extensions"] >= 1
    assert judged["requests"] >= 60 + needed
    assert (promotion["percent"], promotion["action"]) == (100, "promote")


def test_an_inconclusive_last_stage_is_rolled_back_past_its_extensions(
    service: ServiceManager, canary: Canary
) -> None:
    router = release(service, canary)
    with traffic(router):
        rollout = canary.rollout(router, stages=(50, 100), stage_requests=60, max_extensions=0)
        result = rollout.run()
    assert result.rolled_back, result.timeline
    assert result.reason.startswith("still inconclusive: needs ")
    assert result.reason.endswith(" after 0 extensions")
    assert [entry["action"] for entry in result.timeline] == ["rollback"]
    assert router.weights()["canary"] == 0


def test_every_stage_can_be_extended_while_inconclusive(
    service: ServiceManager, canary: Canary
) -> None:
    """``extend="every"``: an early stage with too few canary requests holds its weight
    (as Flagger halts advancement) until the judge can speak, instead of moving on."""
    router = release(service, canary)
    with traffic(router):
        result = canary.rollout(
            router, stages=(10, 50, 100), stage_requests=100, extend="every"
        ).run()
    assert result.promoted, result.timeline
    at_ten = [entry for entry in result.timeline if entry.get("percent") == 10]
    assert at_ten[0]["action"] == "extend"
    assert at_ten[-1]["action"] == "advance"
    assert at_ten[-1]["verdict"]["outcome"] in ("pass", "marginal")


def test_a_failing_canary_is_rolled_back(service: ServiceManager, canary: Canary) -> None:
    """A release that answers 500 to a fifth of requests: error rate is critical."""
    router = release(
        service,
        canary,
        (),
        ("--error-rate", "0.2", "--seed", "3"),
    )
    with traffic(router):
        result = canary.rollout(router, judge(), stage_requests=STAGE).run()
    assert result.rolled_back and "error" in result.reason, result.timeline
    assert result.timeline[-1]["verdict"]["outcome"] == "fail"


def test_the_kill_switch_rolls_back_mid_rollout(service: ServiceManager, canary: Canary) -> None:
    router = release(service, canary)
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
    router = release(service, canary)

    def on_stage(entry: dict[str, Any]) -> None:
        if entry["stage"] == 3:
            service["canary"].kill()

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
    load = Load.http(router.url + "/", rps=200, count=600, timeout=CLIENT_TIMEOUT)
    with load.start() as running:
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
        ({"stage_requests": 0}, "stage_requests=0: use a whole number, 1 or more"),
        ({"stages": (100,)}, "at least one below 100"),
        ({"warmup_requests": -1}, "warmup_requests=-1: use a whole number, 0 or more"),
        ({"extend": "all"}, "extend='all': use one of 'last', 'every'"),
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
