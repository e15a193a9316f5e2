"""The threshold judge: fixed rules (at least 100 canary requests, an error-rate ceiling, an
error ratio and a p50 latency ratio to production), no statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import final

from pytest_chaos.canary.stats import (
    check_int,
    check_range,
    median_sorted,
)
from pytest_chaos.canary.verdict import (
    MetricResult,
    Observation,
    Verdict,
    error_count,
    overall,
)


@final
class ThresholdJudge:
    """Fixed rules, in order: fewer than ``min_requests`` canary requests is "not enough
    data yet" (``inconclusive``; a rollout may still move on); then the canary fails
    when its error rate is above ``error_rate_max``, when it is more than
    ``error_ratio_max`` times the baseline's (the baseline's floored at 0.1%; skipped
    without baseline requests), or when its median latency is more than
    ``latency_p50_ratio_max`` times the baseline's (skipped when that is 0). Every rule is
    evaluated and reported; the first that fails gives the reason.
    Windows are not its concern: it pools every request of each side, as the seed did.
    """

    def __init__(
        self,
        *,
        min_requests: int = 100,
        error_rate_max: float = 0.01,
        error_ratio_max: float = 2.0,
        latency_p50_ratio_max: float = 1.5,
    ) -> None:
        check_int("min_requests", min_requests, 1)
        check_range("error_rate_max", error_rate_max, 0.0, 1.0)
        check_range("error_ratio_max", error_ratio_max, 0.0, math.inf)
        check_range("latency_p50_ratio_max", latency_p50_ratio_max, 0.0, math.inf)
        self.min_requests = min_requests
        self.error_rate_max = error_rate_max
        self.error_ratio_max = error_ratio_max
        self.latency_p50_ratio_max = latency_p50_ratio_max

    def __repr__(self) -> str:
        return (
            f"ThresholdJudge(min_requests={self.min_requests}, "
            f"error_rate_max={self.error_rate_max}, error_ratio_max={self.error_ratio_max}, "
            f"latency_p50_ratio_max={self.latency_p50_ratio_max})"
        )

    def judge(self, canary: Sequence[Observation], baseline: Sequence[Observation]) -> Verdict:
        """The seed's decision on ``canary`` against ``baseline`` (production)."""
        nc, nb = len(canary), len(baseline)
        c_rate = error_count(canary) / nc if nc else 0.0
        b_rate = error_count(baseline) / nb if nb else 0.0
        c_p50 = median_sorted(sorted(o.latency_ms for o in canary)) if nc else 0.0
        b_p50 = median_sorted(sorted(o.latency_ms for o in baseline)) if nb else 0.0

        if nc < self.min_requests:
            why = f"Not enough data yet: {nc} canary requests < {self.min_requests}"
            results = (
                MetricResult("error_rate", "inconclusive", c_rate, b_rate, why),
                MetricResult("error_ratio", "inconclusive", c_rate, b_rate, why),
                MetricResult("latency_p50", "inconclusive", c_p50, b_p50, why),
            )
            return Verdict("inconclusive", results, nc, nb, why)

        rate_max = self.error_rate_max
        if c_rate > rate_max:
            rate = MetricResult(
                "error_rate",
                "fail",
                c_rate,
                b_rate,
                f"Error rate too high: {c_rate:.2%} > {rate_max:.2%}",
                effect=c_rate,
            )
        else:
            detail = f"error rate {c_rate:.2%} <= {rate_max:.2%}"
            rate = MetricResult("error_rate", "pass", c_rate, b_rate, detail, effect=c_rate)

        if nb == 0:
            ratio = MetricResult(
                "error_ratio", "inconclusive", c_rate, None, "no production requests to compare"
            )
        else:
            error_ratio = c_rate / max(b_rate, 0.001)
            ratio_max = self.error_ratio_max
            if error_ratio > ratio_max:
                outcome = "fail"
                detail = (
                    f"Error rate {error_ratio:.1f}x higher than production: {c_rate:.2%} vs "
                    f"{b_rate:.2%}, {error_ratio:.2f}x > {ratio_max:g}x"
                )
            else:
                outcome = "pass"
                detail = (
                    f"error rate {c_rate:.2%} vs {b_rate:.2%}: {error_ratio:.2f}x <= {ratio_max:g}x"
                )
            ratio = MetricResult("error_ratio", outcome, c_rate, b_rate, detail, effect=error_ratio)

        if b_p50 <= 0:
            why = "no production latency to compare"
            latency = MetricResult("latency_p50", "inconclusive", c_p50, b_p50 if nb else None, why)
        else:
            p50_ratio = c_p50 / b_p50
            p50_max = self.latency_p50_ratio_max
            numbers = f"p50 {c_p50:.1f} ms vs {b_p50:.1f} ms"
            if p50_ratio > p50_max:
                outcome = "fail"
                detail = (
                    f"Latency {p50_ratio:.1f}x higher than production: "
                    f"{numbers}: {p50_ratio:.2f}x > {p50_max:g}x"
                )
            else:
                outcome, detail = "pass", f"{numbers}: {p50_ratio:.2f}x <= {p50_max:g}x"
            latency = MetricResult("latency_p50", outcome, c_p50, b_p50, detail, effect=p50_ratio)

        return overall((rate, ratio, latency), nc, nb, healthy="Canary is healthy")
