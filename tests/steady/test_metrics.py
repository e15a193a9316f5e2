"""Metrics over synthetic samples: the arithmetic is exact on known data."""

from __future__ import annotations

import json
import math

import pytest

from pytest_chaos.steady.metrics import Metrics, Sample, percentile

T0 = 1000.0


def sample(
    at: float = 0.0,
    latency_ms: float = 1.0,
    lag_ms: float = 0.0,
    ok: bool = True,
    outcome: str | None = None,
) -> Sample:
    """A sample intended at ``T0 + at``, started ``lag_ms`` later, ended ``latency_ms``
    after its intended start."""
    intended = T0 + at
    return Sample(
        intended=intended,
        started=intended + lag_ms / 1000,
        ended=intended + latency_ms / 1000,
        ok=ok,
        outcome=outcome or ("200" if ok else "503"),
    )


def test_a_sample_measures_latency_from_its_intended_start() -> None:
    s = Sample(intended=10.0, started=10.25, ended=10.5, ok=True, outcome="200")
    assert s.latency_s == pytest.approx(0.5)
    assert s.service_time_s == pytest.approx(0.25)
    assert s.lag_s == pytest.approx(0.25)
    assert s.latency_s == pytest.approx(s.lag_s + s.service_time_s)


def test_samples_are_immutable() -> None:
    s = sample()
    with pytest.raises(AttributeError):
        s.ok = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0, 1.0), (1, 1.0), (50, 50.0), (95, 95.0), (99, 99.0), (99.5, 100.0), (100, 100.0)],
)
def test_percentiles_are_nearest_rank_on_1_to_100(p: float, expected: float) -> None:
    metrics = Metrics([sample(at=i / 100, latency_ms=i) for i in range(100, 0, -1)])
    assert metrics.percentile(p) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("p", "expected"), [(25, 10.0), (25.1, 20.0), (50, 20.0), (75, 30.0), (76, 40.0)]
)
def test_percentiles_pick_an_observed_value_on_a_small_set(p: float, expected: float) -> None:
    metrics = Metrics([sample(latency_ms=ms) for ms in (40, 10, 30, 20)])
    assert metrics.percentile(p) == pytest.approx(expected)


@pytest.mark.parametrize("p", [-1, 100.5, math.nan])
def test_a_percentile_outside_0_to_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="percentile must be within 0 and 100"):
        Metrics([sample()]).percentile(p)
    with pytest.raises(ValueError):
        percentile([1.0], p)


def test_counts_error_rate_outcomes_and_latency_statistics() -> None:
    samples = [sample(at=i * 0.01, latency_ms=10) for i in range(7)]
    samples += [sample(at=0.5, latency_ms=40, ok=False), sample(at=0.6, latency_ms=30, ok=False)]
    samples.append(sample(at=0.7, latency_ms=100, ok=False, outcome="ReadTimeout"))
    metrics = Metrics(samples)
    assert (metrics.count, metrics.ok, metrics.errors) == (10, 7, 3)
    assert len(metrics) == 10
    assert metrics.error_rate == pytest.approx(0.3)
    assert metrics.outcomes == {"200": 7, "503": 2, "ReadTimeout": 1}
    assert metrics.p50_ms == pytest.approx(10)
    assert metrics.p95_ms == pytest.approx(100)
    assert metrics.max_ms == pytest.approx(100)
    assert metrics.mean_ms == pytest.approx((7 * 10 + 40 + 30 + 100) / 10)


def test_schedule_lag_statistics() -> None:
    metrics = Metrics([sample(at=i * 0.01, latency_ms=50, lag_ms=i) for i in range(1, 101)])
    assert metrics.lag_p50_ms == pytest.approx(50)
    assert metrics.lag_p99_ms == pytest.approx(99)
    assert metrics.lag_max_ms == pytest.approx(100)
    assert metrics.lag_percentile(0) == pytest.approx(1)


def test_throughput_is_samples_over_the_span_from_first_intended_to_last_end() -> None:
    metrics = Metrics([sample(at=i * 0.5, latency_ms=500) for i in range(4)])  # 0 .. 2.0 s
    assert metrics.span_s == pytest.approx(2.0)
    assert metrics.throughput == pytest.approx(2.0)


def test_empty_metrics_are_well_defined() -> None:
    metrics = Metrics([])
    assert (metrics.count, metrics.ok, metrics.errors, metrics.error_rate) == (0, 0, 0, 0.0)
    assert not metrics.outcomes
    for value in (
        metrics.p50_ms,
        metrics.p95_ms,
        metrics.p99_ms,
        metrics.max_ms,
        metrics.mean_ms,
        metrics.lag_p50_ms,
        metrics.lag_p99_ms,
        metrics.lag_max_ms,
        metrics.percentile(10),
    ):
        assert value is None
    assert metrics.throughput == 0.0
    assert metrics.span_s == 0.0
    assert metrics.per_second() == []
    assert metrics.window(0, 1).count == 0
    summary = metrics.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["latency_ms"]["p99"] is None
    assert summary["count"] == 0


def test_a_single_instantaneous_sample_has_no_throughput() -> None:
    s = Sample(intended=1.0, started=1.0, ended=1.0, ok=True, outcome="ok")
    assert Metrics([s]).throughput == 0.0
    assert Metrics([s]).p50_ms == 0.0


def test_per_second_buckets_by_intended_start_with_empty_seconds_included() -> None:
    samples = [
        sample(at=0.1, latency_ms=10),
        sample(at=0.5, latency_ms=30, ok=False),
        sample(at=0.999, latency_ms=20),
        sample(at=1.0, latency_ms=5),
        sample(at=3.9, latency_ms=1500),  # ends in second 5; still counted in second 3
    ]
    series = Metrics(samples, start=T0).per_second()
    assert series == [
        {"second": 0, "count": 3, "errors": 1, "p50_ms": 20.0, "p99_ms": 30.0},
        {"second": 1, "count": 1, "errors": 0, "p50_ms": 5.0, "p99_ms": 5.0},
        {"second": 2, "count": 0, "errors": 0, "p50_ms": None, "p99_ms": None},
        {"second": 3, "count": 1, "errors": 0, "p50_ms": 1500.0, "p99_ms": 1500.0},
    ]


def test_per_second_counts_from_the_given_start() -> None:
    samples = [sample(at=2.5), sample(at=3.6)]
    assert [b["second"] for b in Metrics(samples).per_second()] == [0, 1]  # from the first
    assert [b["second"] for b in Metrics(samples, start=T0).per_second()] == [2, 3]
    assert [b["second"] for b in Metrics(samples, start=T0 + 3).per_second()] == [-1, 0]


def test_window_takes_intended_starts_in_a_half_open_interval() -> None:
    samples = [sample(at=float(i), ok=i % 2 == 0) for i in range(6)]  # at 0..5 s
    metrics = Metrics(samples, start=T0)
    window = metrics.window(T0 + 1, T0 + 4)
    assert [s.intended - T0 for s in window.samples] == [1.0, 2.0, 3.0]
    assert (window.count, window.errors) == (3, 2)
    assert window.start == T0  # buckets stay aligned with the whole run
    assert [b["second"] for b in window.per_second()] == [1, 2, 3]
    assert metrics.window(since=T0 + 4).count == 2
    assert metrics.window(until=T0 + 1).count == 1
    assert metrics.window().count == 6
    assert metrics.window(T0 + 3, T0 + 3).count == 0


def test_summary_is_json_and_rounds_to_microseconds() -> None:
    samples = [sample(at=i * 0.1, latency_ms=1.23456789, lag_ms=0.1) for i in range(20)]
    samples.append(sample(at=1.5, latency_ms=3, ok=False, outcome="ConnectError"))
    summary = Metrics(samples, start=T0).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["count"] == 21
    assert summary["errors"] == 1
    assert summary["error_rate"] == pytest.approx(1 / 21)
    assert summary["outcomes"] == {"200": 20, "ConnectError": 1}
    assert summary["latency_ms"]["p50"] == 1.235
    assert summary["latency_ms"]["max"] == 3.0
    assert summary["schedule_lag_ms"]["p99"] == 0.1
    assert [b["count"] for b in summary["per_second"]] == [10, 11]
    assert set(summary) == {
        "count",
        "ok",
        "errors",
        "error_rate",
        "outcomes",
        "latency_ms",
        "schedule_lag_ms",
        "throughput_rps",
        "span_s",
        "per_second",
    }
