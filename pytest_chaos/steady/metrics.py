"""What a load measured: one :class:`Sample` per request, and :class:`Metrics` over many.

Latency is measured from the moment a request was *scheduled* to start, not from when it
actually started, so a target that falls behind cannot hide the wait it causes
(coordinated omission; see docs/load.md). The time a request spent in the generator's queue
is the schedule lag; the time the target took once the request was sent is the service
time; latency is their sum.

Percentiles use the nearest-rank method: the p-th percentile of n values is the value at
rank ``ceil(p / 100 * n)`` (1-based) in sorted order, so it is always a latency that was
actually observed, and the 100th is the maximum. Empty metrics report ``None`` for every
percentile and statistic that needs at least one sample.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, final

__all__ = ["Metrics", "Sample", "percentile"]


@final
@dataclass(frozen=True, slots=True)
class Sample:
    """One request of a load, by the monotonic clock (``time.monotonic()``, seconds).

    ``intended`` is when the schedule said it should start, ``started`` when it did,
    ``ended`` when its outcome was known. ``outcome`` names what happened: the HTTP status
    (``"200"``, ``"503"``), the exception's class name (``"ReadTimeout"``,
    ``"ConnectError"``, ``"ValueError"``), ``"ok"``/``"error"`` for TCP and callable targets,
    ``"Timeout"`` when the generator gave up on it. ``ok`` is the target's verdict.
    """

    intended: float
    started: float
    ended: float
    ok: bool
    outcome: str

    @property
    def latency_s(self) -> float:
        """From the intended start to the end: what a user arriving on schedule waited."""
        return self.ended - self.intended

    @property
    def service_time_s(self) -> float:
        """From the actual start to the end: what the target took once asked."""
        return self.ended - self.started

    @property
    def lag_s(self) -> float:
        """From the intended start to the actual start: the schedule error."""
        return self.started - self.intended


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0-100) of ``ordered`` (sorted ascending); None
    when it is empty. ``p=0`` is the minimum, ``p=100`` the maximum."""
    if not 0 <= p <= 100 or math.isnan(p):
        raise ValueError(f"percentile must be within 0 and 100, got {p!r}")
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@final
class Metrics:
    """Counts, error rate, latency percentiles, throughput, schedule lag and a per-second
    series over a set of samples.

    ``start`` is the origin of the per-second buckets (``second`` 0 begins there); by
    default the earliest intended start. A load passes its own start, so that the buckets
    of a :meth:`window` line up with those of the whole run.
    """

    def __init__(self, samples: Iterable[Sample], start: float | None = None) -> None:
        self.samples: tuple[Sample, ...] = tuple(samples)
        self.start: float | None = (
            start if start is not None else min((s.intended for s in self.samples), default=None)
        )
        self._latencies: list[float] | None = None
        self._lags: list[float] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (
            f"<Metrics count={self.count} errors={self.errors} p50_ms={_round(self.p50_ms)} "
            f"p99_ms={_round(self.p99_ms)}>"
        )

    # -- counts --------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def ok(self) -> int:
        return sum(1 for s in self.samples if s.ok)

    @property
    def errors(self) -> int:
        return self.count - self.ok

    @property
    def error_rate(self) -> float:
        """Errors over all samples, 0.0 when there are none."""
        return self.errors / self.count if self.samples else 0.0

    @property
    def outcomes(self) -> Counter[str]:
        """How many samples had each outcome."""
        return Counter(s.outcome for s in self.samples)

    # -- latency -------------------------------------------------------------------------

    @property
    def latencies_s(self) -> list[float]:
        """Every latency (from the intended start), sorted ascending."""
        if self._latencies is None:
            self._latencies = sorted(s.latency_s for s in self.samples)
        return self._latencies

    def percentile(self, p: float) -> float | None:
        """The nearest-rank ``p``-th percentile of latency in milliseconds (None if empty)."""
        return _ms(percentile(self.latencies_s, p))

    @property
    def p50_ms(self) -> float | None:
        return self.percentile(50)

    @property
    def p95_ms(self) -> float | None:
        return self.percentile(95)

    @property
    def p99_ms(self) -> float | None:
        return self.percentile(99)

    @property
    def max_ms(self) -> float | None:
        return self.percentile(100)

    @property
    def mean_ms(self) -> float | None:
        latencies = self.latencies_s
        return _ms(math.fsum(latencies) / len(latencies)) if latencies else None

    # -- schedule lag --------------------------------------------------------------------

    @property
    def lags_s(self) -> list[float]:
        """Every schedule lag (actual minus intended start), sorted ascending."""
        if self._lags is None:
            self._lags = sorted(s.lag_s for s in self.samples)
        return self._lags

    def lag_percentile(self, p: float) -> float | None:
        """The nearest-rank ``p``-th percentile of schedule lag in ms (None if empty)."""
        return _ms(percentile(self.lags_s, p))

    @property
    def lag_p50_ms(self) -> float | None:
        return self.lag_percentile(50)

    @property
    def lag_p99_ms(self) -> float | None:
        return self.lag_percentile(99)

    @property
    def lag_max_ms(self) -> float | None:
        return self.lag_percentile(100)

    # -- rate ----------------------------------------------------------------------------

    @property
    def span_s(self) -> float:
        """From the earliest intended start to the latest end (0.0 when empty)."""
        if not self.samples:
            return 0.0
        return max(s.ended for s in self.samples) - min(s.intended for s in self.samples)

    @property
    def throughput(self) -> float:
        """Samples per second over :attr:`span_s` (0.0 when empty or instantaneous)."""
        span = self.span_s
        return self.count / span if span > 0 else 0.0

    # -- slices --------------------------------------------------------------------------

    def window(self, since: float | None = None, until: float | None = None) -> Metrics:
        """The metrics of the samples whose intended start is in ``[since, until)``
        (monotonic seconds; None leaves that side open), with the same bucket origin."""
        return Metrics(
            (
                s
                for s in self.samples
                if (since is None or s.intended >= since) and (until is None or s.intended < until)
            ),
            start=self.start,
        )

    def per_second(self) -> list[dict[str, Any]]:
        """One entry per whole second since :attr:`start`, by intended start, from the
        first second to the last that has a sample (seconds in between with none are
        included, with a count of 0): ``second``, ``count``, ``errors``, ``p50_ms`` and
        ``p99_ms`` (None when the second has no sample). Samples intended before
        ``start`` fall in negative seconds."""
        if not self.samples or self.start is None:
            return []
        start = self.start
        buckets: dict[int, list[Sample]] = {}
        for sample in self.samples:
            buckets.setdefault(math.floor(sample.intended - start), []).append(sample)
        series = []
        for second in range(min(buckets), max(buckets) + 1):
            bucket = buckets.get(second, [])
            latencies = sorted(s.latency_s for s in bucket)
            series.append(
                {
                    "second": second,
                    "count": len(bucket),
                    "errors": sum(1 for s in bucket if not s.ok),
                    "p50_ms": _round(_ms(percentile(latencies, 50))),
                    "p99_ms": _round(_ms(percentile(latencies, 99))),
                }
            )
        return series

    def summary(self) -> dict[str, Any]:
        """Everything above as plain JSON types, for the journal and the report (times in
        ms rounded to the microsecond; None where there are no samples)."""
        return {
            "count": self.count,
            "ok": self.ok,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "outcomes": dict(sorted(self.outcomes.items())),
            "latency_ms": {
                "p50": _round(self.p50_ms),
                "p95": _round(self.p95_ms),
                "p99": _round(self.p99_ms),
                "max": _round(self.max_ms),
                "mean": _round(self.mean_ms),
            },
            "schedule_lag_ms": {
                "p50": _round(self.lag_p50_ms),
                "p99": _round(self.lag_p99_ms),
                "max": _round(self.lag_max_ms),
            },
            "throughput_rps": _round(self.throughput),
            "span_s": _round(self.span_s),
            "per_second": self.per_second(),
        }
