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
from typing import TYPE_CHECKING, Any, Protocol, final

from pytest_chaos.canary.judge import Judge, Observation, StatisticalJudge, Verdict
from pytest_chaos.canary.stats import check_int

if TYPE_CHECKING:
    from pytest_chaos.steady.probes import Probe

DEFAULT_STAGES = (1, 5, 10, 25, 50, 100)
#: Which inconclusive stages are extended: the last one judged, or every one.
EXTEND = ("last", "every")


class Traffic(Protocol):
    """What a rollout steers and watches: a router, or anything that splits traffic by
    weight and reports what each pool answered."""

    def set_weights(self, weights: Mapping[str, float]) -> None: ...
    def observations(self, since: float | None = None, pool: str | None = None) -> list[Any]: ...


@final
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


@final
class CanaryRollout:
    """A canary release: the ``canary`` pool gets ``stages`` percent of the traffic in
    turn, the rest going to ``baseline``, and the judge compares the two pools over the
    same windows of time.

    Each stage below 100% is a window. It opens when the stage's weights are set, and its
    first requests are left out of the judgement: the canary's first ``warmup_requests``
    (cold connections, a cold process) and the baseline's that started before them. The
    stage ends when ``stage_requests`` requests were seen (or after ``stage_s`` seconds);
    then the judge compares every window so far, each canary request only with the
    baseline's requests of its own window (``Observation.window``), so that a machine
    getting busier over the release weighs on both sides alike. Then:

    - pass or marginal: the next stage; after the last stage below 100%, promoted (100%);
    - inconclusive (the requests so far could not show the regression the judge is told to
      detect): at the last stage below 100% — or at every stage with ``extend="every"`` —
      the stage is extended by the requests the verdict asks for (at least a quarter of a
      stage), up to ``max_extensions`` times, then rolled back: never promoted without a
      conclusive verdict. At earlier stages (``extend="last"``), the next stage, since
      more traffic is how the evidence comes;
    - fail: counted; a failed critical metric (the error rate, by default), or
      ``max_consecutive_failures`` failed checks in a row, or ``max_failures`` in all,
      roll back (0% canary); otherwise the stage goes on and is judged again.

    The 100% stage is the promotion itself: no baseline is left to compare with.
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
        warmup_requests: int = 5,
        extend: str = "last",
        max_extensions: int = 5,
        max_consecutive_failures: int = 1,
        max_failures: int = 3,
        stage_timeout_s: float = 60.0,
        on_done: Callable[[RolloutResult], None] | None = None,
    ) -> None:
        _stages(stages)
        if stage_requests is None and stage_s is None:
            raise ValueError("give stage_requests or stage_s: when a stage ends")
        if stage_requests is not None:
            check_int("stage_requests", stage_requests, 1)
        for name, value, minimum in (
            ("warmup_requests", warmup_requests, 0),
            ("max_extensions", max_extensions, 0),
            ("max_consecutive_failures", max_consecutive_failures, 1),
            ("max_failures", max_failures, 1),
        ):
            check_int(name, value, minimum)
        if extend not in EXTEND:
            raise ValueError(f"extend={extend!r}: use one of {', '.join(map(repr, EXTEND))}")
        self.traffic = traffic
        self.judge: Judge = judge if judge is not None else StatisticalJudge()
        self.canary = canary
        self.baseline = baseline
        self.stages = tuple(float(stage) for stage in stages)
        self.stage_requests = stage_requests
        self.stage_s = stage_s
        self.warmup_requests = warmup_requests
        self.extend = extend
        self.max_extensions = max_extensions
        self.max_consecutive_failures = max_consecutive_failures
        self.max_failures = max_failures
        self.stage_timeout_s = stage_timeout_s
        self.on_done = on_done
        self._killed = False
        self._started = 0.0
        self._windows: list[_Window] = []

    def kill(self) -> None:
        """The kill switch: the rollout stops at its next check and rolls back."""
        self._killed = True

    def run(self, on_stage: Callable[[dict[str, Any]], None] | None = None) -> RolloutResult:
        """Run the stages; ``on_stage`` hears each timeline entry as it is made. The router
        is left at 100% canary when promoted, 0% otherwise (also on an exception)."""
        result = RolloutResult("canary", "stopped", "")
        self._started = time.monotonic()
        self._windows = []
        promoted = False
        try:
            if self._release(result, on_stage):
                promoted = True
                result.outcome, result.reason = "promoted", "every stage passed"
            return result
        finally:
            self._set(100.0 if promoted else 0.0)
            if self.on_done is not None:
                self.on_done(result)

    def _release(
        self, result: RolloutResult, on_stage: Callable[[dict[str, Any]], None] | None
    ) -> bool:
        """Walk the stages, recording each judgement; True once promoted."""
        failures = consecutive = 0
        judged = self.stages[:-1]
        for index, percent in enumerate(judged):
            if self._killed:
                return self._kill(result, index)
            window = self._open(index, percent)
            extensions = 0
            since, wanted = window.opened, self.stage_requests
            while True:
                seen = self._gather(window, since, wanted)
                since = time.monotonic()
                verdict = self.judge.judge(*self._observed())
                action = self._decide(verdict, index, extensions, failures, consecutive)
                if verdict.outcome == "fail":
                    failures += 1
                    consecutive += 1
                elif verdict.outcome in ("pass", "marginal"):
                    consecutive = 0
                entry = {
                    "stage": index + 1,
                    "percent": percent,
                    "requests": seen,
                    "at_s": round(since - self._started, 3),
                    "window_s": window.span(self._started, since),
                    "verdict": verdict.to_json(),
                    "action": action,
                    "failures": failures,
                    "extensions": extensions,
                }
                result.timeline.append(entry)
                if on_stage is not None:
                    on_stage(entry)
                if action == "rollback":
                    result.outcome = "rolled_back"
                    result.reason = verdict.reason
                    if verdict.outcome == "inconclusive":
                        result.reason = f"still {verdict.reason} after {extensions} extensions"
                    return False
                if action == "advance":
                    break
                if action == "extend":
                    extensions += 1
                    wanted = self._extension(verdict)
                else:  # hold: a failure under the limits, judged again after a stage more
                    wanted = self.stage_requests
                if self._killed:
                    return self._kill(result, index)
        if self._killed:
            return self._kill(result, len(judged))
        self._set(100.0)
        result.timeline.append(
            {
                "stage": len(self.stages),
                "percent": 100.0,
                "at_s": round(time.monotonic() - self._started, 3),
                "action": "promote",
            }
        )
        return True

    def _kill(self, result: RolloutResult, index: int) -> bool:
        entry = {
            "stage": index + 1,
            "at_s": round(time.monotonic() - self._started, 3),
            "action": "rollback",
            "reason": "killed",
        }
        result.timeline.append(entry)
        result.outcome, result.reason = "rolled_back", "killed"
        return False

    def _decide(
        self, verdict: Verdict, index: int, extensions: int, failures: int, consecutive: int
    ) -> str:
        if verdict.outcome == "fail":
            failed_in_a_row = consecutive + 1 >= self.max_consecutive_failures
            if verdict.critical or failed_in_a_row or failures + 1 >= self.max_failures:
                return "rollback"
            return "hold"
        if verdict.outcome == "inconclusive":
            last = index == len(self.stages) - 2
            if not (last or self.extend == "every"):
                return "advance"  # more traffic is how the evidence comes
            return "extend" if extensions < self.max_extensions else "rollback"
        return "advance"

    def _extension(self, verdict: Verdict) -> int | None:
        """How many more requests an extension waits for: what the verdict asks, at least a
        quarter of a stage."""
        least = max(1, (self.stage_requests or 0) // 4)
        return least if verdict.needed is None else max(least, verdict.needed)

    def _set(self, percent: float) -> None:
        self.traffic.set_weights({self.canary: percent, self.baseline: 100.0 - percent})

    def _open(self, index: int, percent: float) -> _Window:
        """Set the stage's weights and open its window."""
        self._set(percent)
        window = _Window(index, time.monotonic())
        if self._windows:
            self._windows[-1].closed = window.opened
        self._windows.append(window)
        return window

    def _gather(self, window: _Window, since: float, wanted: int | None) -> int:
        """Wait until ``wanted`` more requests were seen since ``since`` (or the stage's
        time is up); return how many the stage has seen."""
        limit = self.stage_s if self.stage_s is not None else self.stage_timeout_s
        deadline = time.monotonic() + limit if since > window.opened else since + limit
        while True:
            seen = self.traffic.observations(since=window.opened)
            more = sum(1 for item in seen if item.at >= since)
            enough = wanted is not None and more >= wanted
            if enough or time.monotonic() >= deadline or self._killed:
                return len(seen)
            time.sleep(0.01)

    def _observed(self) -> tuple[list[Observation], list[Observation]]:
        """Each pool's requests in the windows so far, warm-up left out, each marked with
        its window."""
        served = self.traffic.observations(since=self._started)
        current = self._windows[-1]
        if current.start is None:
            canary = sorted(
                i.at for i in served if i.pool == self.canary and i.at >= current.opened
            )
            if len(canary) > self.warmup_requests:
                current.start = (
                    current.opened if not self.warmup_requests else canary[self.warmup_requests]
                )
        sides: dict[str, list[Observation]] = {self.canary: [], self.baseline: []}
        for item in served:
            window = self._window_of(item.at)
            if window is not None and item.pool in sides:
                sides[item.pool].append(
                    Observation(item.latency_ms, item.ok, item.at, window.index)
                )
        return sides[self.canary], sides[self.baseline]

    def _window_of(self, at: float) -> _Window | None:
        """The window a request that started at ``at`` is judged in, if any."""
        for window in reversed(self._windows):
            if at >= window.opened:
                judged = window.start is not None and at >= window.start
                return window if judged and (window.closed is None or at < window.closed) else None
        return None


@dataclass
class _Window:
    """One stage's window of time (monotonic seconds): opened when its weights were set,
    judged from ``start`` (after the warm-up; None while warming up), closed when the next
    stage began."""

    index: int
    opened: float
    start: float | None = None
    closed: float | None = None

    def span(self, origin: float, now: float) -> list[float | None]:
        """[judged from, judged to] in seconds since ``origin``, for the timeline: to
        ``now`` while the stage goes on (from None while warming up)."""
        start = None if self.start is None else round(self.start - origin, 3)
        return [start, round((self.closed if self.closed is not None else now) - origin, 3)]


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


@final
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
        from pytest_chaos.steady.probes import ProbeContext

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
        and values[0] < 100
    )
    if not ok:
        raise ValueError(
            f"stages={stages!r}: use rising percentages above 0 that end at 100, with at "
            "least one below 100 to judge the canary at, such as (1, 5, 10, 25, 50, 100)"
        )
