"""The SLO probe: the experiment's load, over the phase being checked, meets service-level
objectives (an error rate and latency percentiles at most the bounds given)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, final

from pytest_chaos.core.activity import python_provider
from pytest_chaos.steady.arguments import probe_name
from pytest_chaos.steady.probes import Probe, ProbeContext, ProbeTarget, retry_seconds


@final
@dataclass(frozen=True)
class SloProbe(Probe):
    """The load's requests over the current phase meet service-level objectives: an error
    rate and latency percentiles at most the bounds given, over at least ``min_samples``."""

    error_rate_max: float | None = None
    p50_ms_max: float | None = None
    p95_ms_max: float | None = None
    p99_ms_max: float | None = None
    min_samples: int = 1
    label: str | None = None
    retry_for_s: float | None = None
    bounds: tuple[tuple[str, float], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        given = {
            "error_rate": self.error_rate_max,
            "p50_ms": self.p50_ms_max,
            "p95_ms": self.p95_ms_max,
            "p99_ms": self.p99_ms_max,
        }
        for key, bound in given.items():
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, (int, float)) or bound < 0
            ):
                raise ValueError(f"{key}_max={bound!r}: use a number, 0 or more")
        if self.error_rate_max is not None and self.error_rate_max > 1:
            raise ValueError(f"error_rate_max={self.error_rate_max!r}: a rate is from 0 to 1")
        if (
            isinstance(self.min_samples, bool)
            or not isinstance(self.min_samples, int)
            or self.min_samples < 1
        ):
            raise ValueError(f"min_samples={self.min_samples!r}: use a whole number, 1 or more")
        bounds = tuple((key, float(b)) for key, b in given.items() if b is not None)
        if not bounds:
            raise ValueError("probes.slo() needs a bound: error_rate_max, p50_ms_max, ...")
        object.__setattr__(self, "bounds", bounds)

    def default_name(self) -> str:
        return "slo " + ", ".join(f"{key}<={bound:g}" for key, bound in self.bounds)

    def describe(self, target: ProbeTarget) -> str:
        return self.expected()

    def expected(self) -> str:
        shown = [f"{_SLO_WORDS[key]} <= {_slo_value(key, bound)}" for key, bound in self.bounds]
        return ", ".join(shown) + f" over >= {self.min_samples} requests"

    def measure(self, context: ProbeContext) -> dict[str, Any]:
        if context.metrics is None:
            raise ValueError("probes.slo() judges the load's requests: give the experiment a load")
        metrics = context.metrics()
        value: dict[str, Any] = {"count": metrics.count}
        if context.window_open and metrics.count < self.min_samples:
            value["not_judged_yet"] = True
        for key, _ in self.bounds:
            value[key] = getattr(metrics, key)
        return value

    def judge(self, value: dict[str, Any]) -> str | None:
        if value.get("not_judged_yet"):
            return None
        if value["count"] < self.min_samples:
            return f"only {value['count']} requests, fewer than {self.min_samples}"
        problems = []
        for key, bound in self.bounds:
            seen = value[key]
            if seen is not None and seen > bound:
                problems.append(
                    f"{_SLO_WORDS[key]} {_slo_value(key, seen)} > {_slo_value(key, bound)}"
                )
        return "; ".join(problems) or None

    def provider(self) -> dict[str, Any]:
        arguments = {f"{key}_max": bound for key, bound in self.bounds}
        return python_provider(__name__, "slo", {**arguments, "min_samples": self.min_samples})


_SLO_WORDS = {
    "error_rate": "error rate",
    "p50_ms": "p50 latency",
    "p95_ms": "p95 latency",
    "p99_ms": "p99 latency",
}


def _slo_value(key: str, value: float) -> str:
    return f"{value:.2%}" if key == "error_rate" else f"{value:.0f} ms"


def slo(
    *,
    error_rate_max: float | None = None,
    p50_ms_max: float | None = None,
    p95_ms_max: float | None = None,
    p99_ms_max: float | None = None,
    min_samples: int = 1,
    name: str | None = None,
    retry_for_s: float | None = None,
) -> SloProbe:
    """The experiment's load meets these objectives over the phase being checked (before,
    during, or after the faults): error rate and latency percentiles at most the bounds."""
    return SloProbe(
        error_rate_max,
        p50_ms_max,
        p95_ms_max,
        p99_ms_max,
        min_samples,
        probe_name(name),
        retry_seconds(retry_for_s),
    )
