"""Readiness probes against real processes, and errors that say what was tried, the last
error, and what the service wrote."""

from __future__ import annotations

import re
import sys
import time

import httpx
import pytest

from pytest_chaos import probes
from pytest_chaos.services import ProcessService, ReadinessError, ServiceError, ServiceManager

from .helpers import app, gone

SLEEP = "import time; time.sleep(60)"


def test_tcp_waits_for_a_listener(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=probes.tcp())
    assert httpx.get(web.url).text == "hello"


def test_tcp_on_a_named_port(service: ServiceManager) -> None:
    argv = [sys.executable, *app()[1:3], "{port:http}"]
    web = service.process("web", argv, ready=probes.tcp("http"))
    assert httpx.get(f"http://127.0.0.1:{web.ports['http']}/").text == "hello"


@pytest.mark.parametrize(
    "probe",
    [
        probes.http(),
        probes.http("/health", status=200, body="ok"),
        probes.http("health", status=(200, 204), body=lambda text: text == "ok"),
        probes.http("/missing", status=404),
    ],
    ids=["root", "body-text", "body-predicate", "status-set"],
)
def test_http_checks_status_and_body(service: ServiceManager, probe: probes.Probe) -> None:
    web = service.process("web", app(), ready=probe)
    assert httpx.get(web.url).text == "hello"


def test_log_pattern_matches_output_since_the_last_start(service: ServiceManager) -> None:
    script = "import os, time; print('up as', os.getpid(), flush=True); time.sleep(60)"
    worker = service.process(
        "worker", [sys.executable, "-c", script], ready=probes.log(r"^up as \d+$")
    )
    first = worker.pid
    worker.restart()
    assert worker.output_since_start().strip() == f"up as {worker.pid}"
    assert f"up as {first}" in worker.logs()


def test_a_callable_gets_the_service(service: ServiceManager) -> None:
    seen: list[ProcessService] = []

    def answers(svc: ProcessService) -> bool:
        seen.append(svc)
        return httpx.get(svc.url, timeout=1).status_code == 200

    web = service.process("web", app(), ready=answers)
    assert seen[-1] is web
    other = service.process("other", app(), ready=probes.call(answers, "the app answers"))
    assert seen[-1] is other


def test_several_probes_pass_in_order(service: ServiceManager) -> None:
    web = service.process(
        "web", app(), ready=[probes.log("listening"), probes.tcp(), probes.http("/health")]
    )
    assert httpx.get(web.url + "/health").text == "ok"


def test_a_timeout_says_what_was_tried_the_last_error_and_the_log(service: ServiceManager) -> None:
    started = time.monotonic()
    with pytest.raises(ReadinessError) as caught:
        service.process(
            "web",
            app("--health-status", "503"),
            ready=[probes.tcp(), probes.http("/health")],
            ready_timeout=1,
        )
    assert time.monotonic() - started >= 1
    error = caught.value
    port = service["web"].port
    text = str(error)
    assert text.startswith("service 'web' was not ready within 1 s (")
    assert (
        f"waited for: TCP connect to 127.0.0.1:{port} (passed); HTTP GET http://127.0.0.1:{port}/health answering 200"
        in text
    )
    assert "last error: answered 503: 'not yet'" in text
    assert re.search(rf"last 20 log lines of 'web':\n    listening on {port}\n", text)
    assert error.service == "web" and error.last_error == "answered 503: 'not yet'"
    assert not service["web"].running  # nothing half-started is left


def test_a_service_that_exits_fails_at_once(service: ServiceManager) -> None:
    script = "import sys; print('config file missing', file=sys.stderr); sys.exit(3)"
    started = time.monotonic()
    with pytest.raises(ReadinessError) as caught:
        service.process(
            "broken", [sys.executable, "-c", script], ready=probes.tcp(), ports={"port": 0}
        )
    assert time.monotonic() - started < 10  # not the 30 s timeout
    text = str(caught.value)
    assert re.match(
        r"service 'broken' exited with code 3 before it was ready \(after \d+\.\d s\)", text
    )
    # refused while it started, or (on a busy machine) gone before the first check
    assert re.search(
        r"last error: (ConnectionRefusedError: \[Errno 111\] Connection refused|none)\n", text
    )
    assert text.endswith("last 20 log lines of 'broken':\n    config file missing")


def test_a_silent_service_says_so(service: ServiceManager) -> None:
    with pytest.raises(ReadinessError, match=r"log lines of 'mute':\n    \(no output\)$"):
        service.process(
            "mute", [sys.executable, "-c", SLEEP], ready=probes.log("never"), ready_timeout=0.2
        )


def test_a_failing_callable_is_reported(service: ServiceManager) -> None:
    def never(svc: object) -> bool:
        raise LookupError("no such key")

    with pytest.raises(
        ReadinessError, match=r"waited for: never check\n  last error: LookupError: no such key"
    ):
        service.process(
            "db",
            [sys.executable, "-c", SLEEP],
            ready=probes.call(never, "never check"),
            ready_timeout=0.2,
        )
    with pytest.raises(ReadinessError, match=r"last error: .*\.<locals>\.<lambda> returned False"):
        service.process(
            "db2", [sys.executable, "-c", SLEEP], ready=lambda svc: False, ready_timeout=0.2
        )


def test_probes_that_cannot_work_are_refused_before_starting(service: ServiceManager) -> None:
    with pytest.raises(ServiceError, match=r"service 'quiet' has no port"):
        service.process("quiet", [sys.executable, "-c", SLEEP], ready=probes.tcp())
    with pytest.raises(
        ValueError, match="service 'web' has no port named 'admin'; its ports: port"
    ):
        service.process("web", app(), ready=probes.http("/", port="admin"))
    with pytest.raises(TypeError, match=r"ready=42: expected a probe \(probes.tcp\(\)"):
        service.process("web2", app(), ready=42)  # type: ignore[arg-type]
    assert all(not svc.running for svc in service)


def test_an_http_probe_may_take_a_full_url(service: ServiceManager) -> None:
    web = service.process("web", app(), ready=probes.tcp())
    other = service.process(
        "other", [sys.executable, "-c", SLEEP], ready=probes.http(web.url + "/health")
    )
    assert other.running


def test_a_process_that_fails_readiness_is_stopped_with_its_tree(service: ServiceManager) -> None:
    with pytest.raises(ReadinessError):
        service.process(
            "web",
            app("--child", "--health-status", "500"),
            ready=probes.http("/health"),
            ready_timeout=0.5,
        )
    child = int(service["web"].logs().split("child ")[1].split()[0])
    assert gone(child)
