"""Steady-state probes against real local servers: what they measure, how they judge it, how
they retry, and what they say when the system deviates."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from pytest_chaos import probes
from pytest_chaos.steady.load import Load
from pytest_chaos.steady.metrics import Metrics, Sample
from pytest_chaos.steady.probes import ProbeContext
from pytest_chaos.steady.tolerance import between, jsonpath

from .loadserver import LoadServer


@pytest.fixture(scope="module")
def server() -> Iterator[LoadServer]:
    with LoadServer() as running:
        yield running


NOTHING = ProbeContext()


def test_http_probe_holds_for_the_status_it_expects(server: LoadServer) -> None:
    run = probes.http(server.url("/fast"), name="fast").run(NOTHING)
    assert run.tolerance_met and run.error is None and run.attempts == 1
    assert run.output["status"] == 200 and run.output["body"] == "ok"
    assert run.output["latency_ms"] > 0
    assert run.explain() == "fast: held (status 200)"


def test_http_probe_deviation_names_the_answer(server: LoadServer) -> None:
    run = probes.http(server.url("/status/503"), name="api").run(NOTHING)
    assert not run.tolerance_met
    assert run.explain() == "api: answered 503: 'ok'; expected status 200"
    assert probes.http(server.url("/status/503"), status={200, 503}).run(NOTHING).tolerance_met


def test_http_probe_latency_bound(server: LoadServer) -> None:
    run = probes.http(server.url("/slow?ms=150"), latency_ms_max=50, name="slow").run(NOTHING)
    assert not run.tolerance_met
    assert run.output["latency_ms"] >= 150
    assert "ms over 50 ms" in (run.deviation or "")
    assert probes.http(server.url("/slow?ms=1"), latency_ms_max=5000).run(NOTHING).tolerance_met


def test_http_probe_body_tolerances(server: LoadServer) -> None:
    assert probes.http(server.url("/fast"), body="ok").run(NOTHING).tolerance_met
    assert not probes.http(server.url("/fast"), body="up").run(NOTHING).tolerance_met
    judged = probes.http(server.url("/fast"), body=between(0, 1)).run(NOTHING)
    assert not judged.tolerance_met and "body not between" in (judged.deviation or "")
    accepted = probes.http(server.url("/fast"), body=lambda text: text.startswith("o"))
    assert accepted.run(NOTHING).tolerance_met


def test_http_probe_that_cannot_connect_reports_the_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    run = probes.http(f"http://127.0.0.1:{port}/", timeout=1, name="gone").run(NOTHING)
    assert not run.tolerance_met and run.output is None
    assert run.error is not None and run.error.startswith("ConnectError")
    assert run.explain().startswith("gone: ConnectError")


def test_a_probe_retries_until_it_holds_within_its_deadline() -> None:
    """A value that comes right on the third try passes with ``retry_for_s``; without it
    the first answer counts."""
    answers = iter([1, 2, 3, 3, 3])
    held = probes.call(lambda: next(answers), tolerance=3, retry_for_s=5).run(NOTHING)
    assert held.tolerance_met and held.attempts == 3 and held.output == 3
    once = probes.call(lambda: 1, tolerance=3).run(NOTHING)
    assert not once.tolerance_met and once.attempts == 1


def test_a_probe_gives_up_when_its_deadline_passes() -> None:
    started = time.monotonic()
    run = probes.call(lambda: False, retry_for_s=0.3, name="never").run(NOTHING)
    assert not run.tolerance_met and run.attempts >= 2
    assert time.monotonic() - started >= 0.3
    assert run.explain() == (
        "never: test_a_probe_gives_up_when_its_deadline_passes.<locals>.<lambda> returned "
        "False; expected anything but False"
    )


def test_tcp_probe(server: LoadServer) -> None:
    address = f"127.0.0.1:{server.port}"
    assert probes.tcp(address=address).run(NOTHING).tolerance_met
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{unused.getsockname()[1]}"
    run = probes.tcp(address=closed).run(NOTHING)
    assert not run.tolerance_met and "ConnectionRefusedError" in (run.error or "")


def test_call_probe_with_tolerances() -> None:
    assert (
        probes.call(lambda: {"status": "up"}, tolerance=jsonpath("$.status", expect="up"))
        .run(NOTHING)
        .tolerance_met
    )
    run = probes.call(lambda: 7, tolerance=[0, 5], name="depth").run(NOTHING)
    assert not run.tolerance_met
    assert run.explain().endswith("<lambda> returned 7; expected between 0 and 5")


def samples(latencies_ms: list[float], errors: int = 0) -> Metrics:
    made = [
        Sample(intended=i, started=i, ended=i + ms / 1000, ok=i >= errors, outcome="200")
        for i, ms in enumerate(latencies_ms)
    ]
    return Metrics(made, start=0)


def test_slo_probe_judges_error_rate_and_percentiles() -> None:
    metrics = samples([10] * 98 + [900, 950], errors=2)  # type: ignore[arg-type]  # a wrong type on purpose
    context = ProbeContext(metrics=lambda: metrics)
    assert probes.slo(error_rate_max=0.05, p50_ms_max=20).run(context).tolerance_met
    run = probes.slo(error_rate_max=0.01, p99_ms_max=500).run(context)
    assert not run.tolerance_met
    assert run.deviation == "error rate 2.00% > 1.00%; p99 latency 900 ms > 500 ms"
    assert run.output["count"] == 100


def test_slo_probe_needs_enough_requests() -> None:
    few = ProbeContext(metrics=lambda: samples([10, 10]))
    run = probes.slo(p99_ms_max=100, min_samples=5).run(few)
    assert not run.tolerance_met and run.deviation == "only 2 requests, fewer than 5"
    filling = ProbeContext(metrics=lambda: samples([10, 10]), window_open=True)
    assert probes.slo(p99_ms_max=100, min_samples=5).run(filling).tolerance_met


def test_slo_probe_over_a_real_load(server: LoadServer) -> None:
    with Load.http(server.url("/fast"), rps=100, count=50).start() as running:
        running.wait()
        context = ProbeContext(metrics=running.metrics)
        run = probes.slo(error_rate_max=0, p99_ms_max=5000, min_samples=50).run(context)
    assert run.tolerance_met and run.output["count"] == 50


def test_slo_probe_without_a_load_says_so() -> None:
    run = probes.slo(p99_ms_max=1).run(NOTHING)
    assert not run.tolerance_met and "give the experiment a load" in (run.error or "")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: probes.slo(), "probes.slo() needs a bound"),
        (lambda: probes.slo(error_rate_max=2), "error_rate_max=2: a rate is from 0 to 1"),
        (lambda: probes.slo(p99_ms_max=-1), "p99_ms_max=-1: use a number, 0 or more"),
        (lambda: probes.http("/", latency_ms_max=0), "latency_ms_max=0: use milliseconds"),
        (lambda: probes.tcp(address="nowhere"), "address='nowhere': use host:port"),
        (lambda: probes.call(lambda: 1, retry_for_s=-1), "retry_for_s=-1"),
        (lambda: probes.call("fn"), "probes.call('fn'): give a function"),  # type: ignore[arg-type]  # a wrong type on purpose
        # arguments that cannot mean what was written (a port name that is an address...)
        (
            lambda: probes.tcp("127.0.0.1:6379"),
            "probes.tcp('127.0.0.1:6379') names a port of the service, not an address; "
            "for an address use probes.tcp(address='127.0.0.1:6379')",
        ),
        (lambda: probes.tcp(6379), "not a number; for a port of this machine use address="),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: probes.tcp("6379"), "or a container's '6379/tcp'), not a number"),
        (lambda: probes.http(port=8080), "use a full URL such as 'http://127.0.0.1:8080/'"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: probes.tcp("my port"), "port='my port'): name a port of the service"),
        (lambda: probes.tcp("db", address="127.0.0.1:1"), "give the port of a service or an"),
        (lambda: probes.tcp(address="127.0.0.1:70000"), "with a port from 1 to 65535"),
        (lambda: probes.tcp(address="127.0.0.1:1", timeout=0), "timeout=0: use a number"),
        (lambda: probes.tcp(address="127.0.0.1:1", name=""), "name='': use a non-empty"),
        (
            lambda: probes.http("127.0.0.1:8080/health"),
            "would be a path on the service; for that address give a full URL: "
            "probes.http('http://127.0.0.1:8080/health')",
        ),
        (lambda: probes.http(port="localhost:80"), "probes.http('http://localhost:80/')"),
        (lambda: probes.http("ftp://host/x"), "not an http:// or https:// URL with a host"),
        (lambda: probes.http("http://host:99999/"), "a port from 1 to 65535"),
        (lambda: probes.http("http:///path"), "not an http:// or https:// URL with a host"),
        (lambda: probes.http("http://h/", port="admin"), "a full URL has its port already"),
        (lambda: probes.http("/", status="200"), "status='200': use an HTTP status"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: probes.http("/", status=[]), "status=[]: use an HTTP status"),
        (lambda: probes.http("/", status=True), "status=True: use an HTTP status"),
        (lambda: probes.http("/", status=2000), "status=2000: use an HTTP status"),
        (lambda: probes.http("/", body=5), "body=5: use a string the body contains"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: probes.http("/", method="GET /x"), "method='GET /x': use an HTTP method"),
        (lambda: probes.http("/", timeout=-1), "timeout=-1: use a number of seconds"),
        (lambda: probes.http(None), "probes.http(None): give a path"),  # type: ignore[arg-type]
        (lambda: probes.log("(unclosed"), "probes.log('(unclosed'): not a regular expression"),
        (lambda: probes.log(b"x"), "give a regular expression"),  # type: ignore[arg-type]
        (lambda: probes.call(len, description=""), "(description=''): use a non-empty string"),
        (lambda: probes.slo(p99_ms_max=1, min_samples=0), "min_samples=0: use a whole number"),
    ],
)
def test_bad_probes_are_refused_when_described(make: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError)) as raised:
        make()  # type: ignore[operator]
    assert message in str(raised.value)


def test_a_relative_http_probe_needs_a_service() -> None:
    run = probes.http("/health").run(NOTHING)
    assert not run.tolerance_met and "give a full URL" in (run.error or "")


def test_an_http_probe_body_takes_chaos_toolkit_forms(server: LoadServer) -> None:
    """``body=`` takes a tolerance's Chaos Toolkit form, not only a string or a function."""
    url = server.url()
    held = probes.http(url, body={"type": "regex", "pattern": "."}).run(NOTHING)  # type: ignore[arg-type]  # a wrong type on purpose
    missed = probes.http(url, body={"type": "regex", "pattern": "^never$"}).run(NOTHING)  # type: ignore[arg-type]  # a wrong type on purpose
    assert (held.tolerance_met, missed.tolerance_met) == (True, False)
    assert "body not matching /^never$/" in (missed.deviation or "")
