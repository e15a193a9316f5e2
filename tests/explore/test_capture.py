"""What a run sees and breaks in the test's own process: httpx requests (the test's own,
or its code under test's), call sites, and the hang timeout. Real sockets, a real server,
real patching."""

from __future__ import annotations

import asyncio
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_chaos.explore.calls import CallSites
from pytest_chaos.explore.cells import Dependency, FaultRef
from pytest_chaos.explore.hang import Hung, Watchdog
from pytest_chaos.explore.httpx_capture import HttpCapture, path_pattern

from ..proxy.helpers import http_server
from .support import client


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with http_server(Hello) as address:
        yield address


@pytest.fixture
def capture(server: str) -> Iterator[HttpCapture]:
    names = {server: "hello"}
    seen = HttpCapture(
        seed=1,
        host_name=names.get,
        ignored=lambda address: address == "127.0.0.1:9",
        is_test_file=lambda filename: os.path.basename(filename).startswith("test_"),
    )
    seen.install()
    seen.start()
    yield seen
    seen.stop()
    seen.end_faults()
    seen.uninstall()


def test_requests_of_the_code_under_test_are_dependencies(
    capture: HttpCapture, server: str
) -> None:
    assert client.fetch(f"http://{server}/orders/42") == 200
    assert asyncio.run(client.fetch_async(f"http://{server}/orders/43")) == 200
    assert httpx.get(f"http://{server}/health", timeout=2).status_code == 200  # the test's own
    (usage,) = capture.usages()
    assert usage.dependency == Dependency("http", "GET hello/orders/{id}")
    assert (usage.uses, usage.outcomes) == (2, frozenset({"200"}))
    assert capture.own == {"GET /health -> 200"} and capture.last_own_status == 200


def test_faults_strike_the_dependency_and_spare_the_test(capture: HttpCapture, server: str) -> None:
    capture.apply(FaultRef(Dependency("http", "GET hello/orders/{id}"), "503"))
    assert client.fetch(f"http://{server}/orders/1") == 503
    assert asyncio.run(client.fetch_async(f"http://{server}/orders/2")) == 503
    assert client.fetch(f"http://{server}/other") == 200
    assert httpx.get(f"http://{server}/orders/3", timeout=2).status_code == 200
    capture.end_faults()
    assert client.fetch(f"http://{server}/orders/4") == 200


def test_clients_of_the_machinery_are_left_alone(capture: HttpCapture) -> None:
    made = httpx.Client(base_url="http://127.0.0.1:9")
    assert type(made._transport).__name__ == "HTTPTransport"
    ours = httpx.Client()
    assert type(ours._transport).__name__ == "_RecordingTransport"
    made.close()
    ours.close()


def test_identities_in_paths_read_as_one_endpoint() -> None:
    assert path_pattern("/orders/42/items/9f8e7d6c5b4a39281706f5e4d3c2b1a0") == (
        "/orders/{id}/items/{id}"
    )
    assert path_pattern("/products/tea") == "/products/tea"


def test_a_call_site_is_counted_then_made_to_raise() -> None:
    sites = CallSites(seed=1)
    sites.register(
        "tests.explore.support.client.fetch", errors=[TimeoutError, TimeoutError("late")]
    )
    sites.start()
    with pytest.raises(httpx.ConnectError):
        client.fetch("http://127.0.0.1:9")
    (usage,) = sites.usages()
    assert (usage.uses, usage.errors) == (1, ("TimeoutError", "TimeoutError#2"))
    sites.apply(
        FaultRef(Dependency("call", "tests.explore.support.client.fetch"), "TimeoutError#2")
    )
    with pytest.raises(TimeoutError, match="late"):
        client.fetch("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="has no exception 'KeyError'"):
        sites.apply(FaultRef(Dependency("call", "tests.explore.support.client.fetch"), "KeyError"))
    sites.undo()
    assert client.fetch.__name__ == "fetch" and not hasattr(client.fetch, "__wrapped__")


def test_a_hang_is_interrupted_where_it_waits() -> None:
    started = time.monotonic()
    never = threading.Event()
    with pytest.raises(Hung) as hung, Watchdog(0.3):
        never.wait()  # where it hangs
    assert 0.3 <= time.monotonic() - started < 10
    line = next(
        number
        for number, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if text.endswith("never.wait()  # where it hangs")
    )
    assert hung.value.where.endswith(
        f"test_capture.py:{line} in {test_a_hang_is_interrupted_where_it_waits.__name__}"
    )
    assert "never.wait()  # where it hangs" in hung.value.stack
    with Watchdog(5):
        pass  # done in time: nothing is raised, and no signal comes later
    time.sleep(0.1)
