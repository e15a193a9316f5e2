"""Releases driven through a :class:`~pytest_chaos.canary.router.Router`: a canary that
takes a growing share of traffic while a judge compares it with the baseline, a blue-green
switch, and a rolling replacement of instances in batches.

Each rollout records a timeline (every stage, judgement and action) for the journal, and
leaves the router in a safe state whatever happens: a canary that is not promoted ends with
no traffic at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .judge import Judge, Observation, StatisticalJudge, Verdict

if TYPE_CHECKING:
    from ..steady.probes import Probe

DEFAULT_STAGES = (1, 5, 10, 25, 50, 100)


class Traffic(Protocol):
    """What a rollout steers and watches: a router, or anything that splits traffic by
    weight and reports what each pool answered."""

    def set_weights(self, weights: Mapping[str, float]) -> None: ...
    def observations(self, since: float | None = None, pool: str | None = None) -> list[Any]: ...


@dataclass
class RolloutResult:
    """How a rollout ended (``promoted``, ``rolled_back``, ``switched``, ``replaced``,
    ``stopped``), why, and its timeline."""

    kind: str
    outcome: str
    reason: str
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    @property
    def rolled_back(self) -> bool:
        return self.outcome == "rolled_back"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "outcome": self.outcome,
            "reason": self.reason,
            "timeline": list(self.timeline),
        }


class CanaryRollout:
    """A canary release: the ``canary`` pool gets ``stages`` percent of the traffic in
    turn, the rest going to ``baseline``. At the end of each stage (``stage_requests``
    requests seen, or ``stage_s`` seconds) the judge compares the canary's requests with the
    baseline's, counted from the start of the rollout:

    - pass or marginal: the next stage (after the last one: promoted, 100% canary);
    - inconclusive (too few canary requests yet): the next stage, since more traffic is
      how the evidence comes; but the last stage is never passed without a conclusive
      verdict: it is checked again, up to ``max_holds`` times, then rolled back;
    - fail: counted; a failed critical metric (the error rate, by default), or
      ``max_consecutive_failures`` failed checks in a row, or ``max_failures`` in all,
      roll back (0% canary); otherwise the stage is checked again.
    """

    def __init__(
        self,
        traffic: Traffic,
        judge: Judge | None = None,
        *,
        canary: str = "canary",
        baseline: str = "stable",
        stages: Sequence[float] = DEFAULT_STAGES,
        stage_requests: int | None = 200,
        stage_s: float | None = None,
        max_consecutive_failures: int = 1,
        max_failures: int = 3,
        max_holds: int = 10,
        stage_timeout_s: float = 60.0,
        on_done: Callable[[RolloutResult], None] | None = None,
    ) -> None:
        _stages(stages)
        if stage_requests is None and stage_s is None:
            raise ValueError("give stage_requests or stage_s: when a stage ends")
        if stage_requests is not None and (
            isinstance(stage_requests, bool) or not isinstance(stage_requests, int)
        ):
            raise ValueError(f"stage_requests={stage_requests!r}: use a whole number")
        if stage_requests is not None and stage_requests < 1:
            raise ValueError(f"stage_requests={stage_requests!r}: use 1 or more")
        for name, value in (
            ("max_consecutive_failures", max_consecutive_failures),
            ("max_failures", max_failures),
            ("max_holds", max_holds),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: use a whole number, 1 or more")
        self.traffic = traffic
        self.judge: Judge = judge if judge is not None else StatisticalJudge()
        self.canary = canary
        self.baseline = baseline
        self.stages = tuple(float(stage) for stage in stages)
        self.stage_requests = stage_requests
        self.stage_s = stage_s
        self.max_consecutive_failures = max_consecutive_failures
        self.max_failures = max_failures
        self.max_holds = max_holds
        self.stage_timeout_s = stage_timeout_s
        self.on_done = on_done
        self._killed = False

    def kill(self) -> None:
        """The kill switch: the rollout stops at its next check and rolls back."""
        self._killed = True

    def run(self, on_stage: Callable[[dict[str, Any]], None] | None = None) -> RolloutResult:
        """Run the stages; ``on_stage`` hears each timeline entry as it is made. The router
        is left at 100% canary when promoted, 0% otherwise (also on an exception)."""
        result = RolloutResult("canary", "stopped", "")
        started = time.monotonic()
        failures = consecutive = 0
        promoted = False
        try:
            index = 0
            holds = 0
            while index < len(self.stages):
                if self._killed:
                    entry = {
                        "stage": index + 1,
                        "at_s": round(time.monotonic() - started, 3),
                        "action": "rollback",
                        "reason": "killed",
                    }
                    result.timeline.append(entry)
                    result.outcome, result.reason = "rolled_back", "killed"
                    return result
                percent = self.stages[index]
                self._set(percent)
                stage_started = time.monotonic()
                seen = self._gather(stage_started)
                verdict = self.judge.judge(
                    self._observed(self.canary, started), self._observed(self.baseline, started)
                )
                action = self._decide(verdict, index, holds, failures, consecutive)
                if verdict.outcome == "fail":
                    failures += 1
                    consecutive += 1
                elif verdict.outcome in ("pass", "marginal"):
                    consecutive = 0
                entry = {
                    "stage": index + 1,
                    "percent": percent,
                    "requests": seen,
                    "at_s": round(time.monotonic() - started, 3),
                    "verdict": verdict.to_json(),
                    "action": action,
                    "failures": failures,
                }
                result.timeline.append(entry)
                if on_stage is not None:
                    on_stage(entry)
                if action == "rollback":
                    result.outcome = "rolled_back"
                    result.reason = verdict.reason
                    return result
                if action == "hold":
                    holds += 1
                    continue
                holds = 0
                index += 1
            promoted = True
            result.outcome, result.reason = "promoted", "every stage passed"
            return result
        finally:
            self._set(100.0 if promoted else 0.0)
            if self.on_done is not None:
                self.on_done(result)

    def _decide(
        self, verdict: Verdict, index: int, holds: int, failures: int, consecutive: int
    ) -> str:
        if verdict.outcome == "fail":
            critical = any(m.critical and m.outcome == "fail" for m in verdict.metrics)
            failed_in_a_row = consecutive + 1 >= self.max_consecutive_failures
            if critical or failed_in_a_row or failures + 1 >= self.max_failures:
                return "rollback"
            return "hold"
        last = index == len(self.stages) - 1
        if verdict.outcome == "inconclusive":
            if not last:
                return "advance"  # more traffic is how the evidence comes
            return "hold" if holds + 1 < self.max_holds else "rollback"
        return "advance" if index < len(self.stages) - 1 else "promote"

    def _set(self, percent: float) -> None:
        self.traffic.set_weights({self.canary: percent, self.baseline: 100.0 - percent})

    def _gather(self, since: float) -> int:
        """Wait until the stage has seen enough requests (or time); return how many."""
        deadline = since + (self.stage_s if self.stage_s is not None else self.stage_timeout_s)
        while True:
            seen = len(self.traffic.observations(since=since))
            enough = self.stage_requests is not None and seen >= self.stage_requests
            if enough or time.monotonic() >= deadline or self._killed:
                return seen
            time.sleep(0.01)

    def _observed(self, pool: str, since: float) -> list[Observation]:
        return [
            Observation(latency_ms=item.latency_ms, ok=item.ok, at=item.at)
            for item in self.traffic.observations(since=since, pool=pool)
        ]


def blue_green_switch(traffic: Traffic, *, to: str = "green", away: str = "blue") -> RolloutResult:
    """Switch all traffic to ``to`` at once (requests in flight finish where they are)."""
    traffic.set_weights({to: 100.0, away: 0.0})
    entry = {"action": "switch", "to": to, "from": away, "at": time.monotonic()}
    return RolloutResult("blue-green", "switched", f"all traffic to {to}", [entry])


class Instance(Protocol):
    """A running instance a rolling release replaces: a service handle."""

    @property
    def address(self) -> str: ...
    def close(self) -> None: ...


class RollingRelease:
    """Replace the instances of ``pool`` in batches: start up to ``max_surge`` new ones
    (``start_new(i)`` returns an instance once it is ready), add them to the pool, and
    remove old ones, never leaving fewer than ``len(old) - max_unavailable`` ready
    instances in the pool. After each batch the ``steady_state`` probes must hold, or the
    release stops there (the new instances stay, the old ones left keep serving)."""

    def __init__(
        self,
        router: Any,
        pool: str,
        old: Sequence[Instance],
        start_new: Callable[[int], Instance],
        *,
        max_surge: int = 1,
        max_unavailable: int = 0,
        steady_state: Sequence[Probe] = (),
        on_done: Callable[[RolloutResult], None] | None = None,
    ) -> None:
        if max_surge < 0 or max_unavailable < 0 or max_surge + max_unavailable < 1:
            raise ValueError(
                f"max_surge={max_surge!r}, max_unavailable={max_unavailable!r}: both 0 or "
                "more, and at least one of them 1 or more"
            )
        if not old:
            raise ValueError("old: a rolling release replaces at least one instance")
        self.router = router
        self.pool = pool
        self.old = list(old)
        self.start_new = start_new
        self.max_surge = max_surge
        self.max_unavailable = max_unavailable
        self.steady_state = tuple(steady_state)
        self.on_done = on_done

    def run(self) -> RolloutResult:
        """Replace every instance, batch by batch; the result says how far it got."""
        result = RolloutResult("rolling", "replaced", "every instance replaced")
        try:
            self._replace(result)
        finally:
            if self.on_done is not None:
                self.on_done(result)
        return result

    def _replace(self, result: RolloutResult) -> None:
        from ..steady.probes import ProbeContext

        wanted = len(self.old)
        serving: list[Instance] = list(self.old)
        remaining = list(self.old)
        created = 0
        started = time.monotonic()
        while remaining or created < wanted:
            # retire old instances while enough stay ready, then surge new ones
            room = len(serving) - (wanted - self.max_unavailable)
            retire = remaining[: max(0, min(len(remaining), room))]
            for instance in retire:
                serving.remove(instance)
                remaining.remove(instance)
            if retire:
                self.router.set_pool(self.pool, [instance.address for instance in serving])
                for instance in retire:
                    instance.close()
            count = min(wanted - created, wanted + self.max_surge - len(serving))
            new = [self.start_new(created + i) for i in range(max(0, count))]
            created += len(new)
            serving.extend(new)
            if new:
                self.router.set_pool(self.pool, [instance.address for instance in serving])
            runs = [probe.run(ProbeContext()) for probe in self.steady_state]
            entry = {
                "action": "batch",
                "at_s": round(time.monotonic() - started, 3),
                "added": [instance.address for instance in new],
                "removed": [instance.address for instance in retire],
                "serving": [instance.address for instance in serving],
                "steady_state_met": all(run.tolerance_met for run in runs),
                "probes": [run.explain() for run in runs],
            }
            result.timeline.append(entry)
            if not entry["steady_state_met"]:
                failed = next(run for run in runs if not run.tolerance_met)
                result.outcome, result.reason = "stopped", failed.explain()
                return


def _stages(stages: Sequence[float]) -> None:
    values = list(stages)
    ok = (
        bool(values)
        and all(
            not isinstance(v, bool) and isinstance(v, (int, float)) and 0 < v <= 100 for v in values
        )
        and values == sorted(values)
        and values[-1] == 100
    )
    if not ok:
        raise ValueError(
            f"stages={stages!r}: use rising percentages above 0 that end at 100, "
            "such as (1, 5, 10, 25, 50, 100)"
        )
