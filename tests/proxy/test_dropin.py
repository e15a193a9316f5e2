"""Drop-in details, side by side with the real Toxiproxy where both should agree: how a
wildcard ``listen`` reads back, and the process metrics on ``/metrics``."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from ..servers import (
    ApiServer,
    free_port,
    require_real_server,
    start_logged_server,
    stop_server,
)
from .helpers import LOOPBACK, Api, TcpServer, echo_server, recv_exactly

PROCESS_COLLECTOR_NAMES = {
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
}


@pytest.fixture
def api(api_server: ApiServer) -> Iterator[Api]:
    with api_server.client() as http:
        yield Api(http)


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", ":0"])
def test_a_wildcard_listen_reads_as_both_families(api: Api, listen: str) -> None:
    """Toxiproxy (Go) binds every wildcard on both IPv4 and IPv6 and reports ``[::]:PORT``;
    clients of either family get through."""
    with echo_server() as upstream:
        spec = {"name": "wild", "listen": listen, "upstream": upstream.address}
        info = api.call("POST", "/proxies", spec, status=201)
        assert re.fullmatch(r"\[::\]:\d+", info["listen"]), info
        assert api.call("GET", "/proxies/wild")["listen"] == info["listen"]
        port = int(info["listen"].rpartition(":")[2])
        for host in (LOOPBACK, "::1"):
            with socket.create_connection((host, port), timeout=10) as client:
                client.sendall(b"ping")
                assert recv_exactly(client, 4) == b"ping"


def test_a_named_host_reads_as_the_address_bound(api: Api) -> None:
    with echo_server() as upstream:
        spec = {"name": "named", "listen": "localhost:0", "upstream": upstream.address}
        info = api.call("POST", "/proxies", spec, status=201)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", info["listen"]), info


# -- /metrics ------------------------------------------------------------------------------


def _families(text: str) -> dict[str, tuple[str, str, list[float]]]:
    """Metric name -> (type, help, sample values), as Prometheus's parser reads them."""
    return {
        family.name + ("_total" if family.type == "counter" else ""): (
            family.type,
            family.documentation,
            [sample.value for sample in family.samples],
        )
        for family in text_string_to_metric_families(text)
    }


def _python_client_families() -> dict[str, tuple[str, str]]:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return {
        family.name + ("_total" if family.type == "counter" else ""): (
            family.type,
            family.documentation,
        )
        for family in registry.collect()
    }


def test_process_metrics_are_named_as_the_python_client_names_them(server: ApiServer) -> None:
    expected = _python_client_families()
    assert set(expected) == PROCESS_COLLECTOR_NAMES  # the client itself, on this machine
    with server.client() as http:
        ours = _families(http.get("/metrics").text)
    assert {name: ours[name][:2] for name in expected if name in ours} == expected


def test_process_metrics_measure_the_server_process(server: ApiServer, echo: TcpServer) -> None:
    """Open descriptors follow the connections the server holds; the start time is the
    server's own (not the test process's)."""
    with server.client() as http:
        listen = Api(http).create_proxy(echo.address).listen
        before = _families(http.get("/metrics").text)
        clients = [socket.create_connection(_split(listen), timeout=10) for _ in range(5)]
        try:
            for client in clients:  # each is accepted and connected upstream
                client.sendall(b"x")
                assert recv_exactly(client, 1) == b"x"
            during = _families(http.get("/metrics").text)
        finally:
            for client in clients:
                client.close()
    assert during["process_open_fds"][2][0] >= before["process_open_fds"][2][0] + 10
    started = before["process_start_time_seconds"][2][0]
    with open(f"/proc/{server.process.pid}/stat", "rb") as stat:
        ticks = float(stat.read().rsplit(b")", 1)[1].split()[19])
    assert started == pytest.approx(_boot_time() + ticks / _clock_ticks(), abs=0.02)
    assert during["process_cpu_seconds_total"][2][0] >= before["process_cpu_seconds_total"][2][0]


@pytest.fixture(scope="module")
def real_with_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    binary = require_real_server()
    port = free_port()
    argv = [binary, "-host", LOOPBACK, "-port", str(port), "-runtime-metrics", "-proxy-metrics"]
    log = tmp_path_factory.mktemp("real-metrics") / "server.log"
    server = start_logged_server("real", argv, port, log)
    yield server
    stop_server(server)


@pytest.mark.realserver
def test_real_toxiproxy_serves_the_same_process_metric_names(
    real_with_metrics: ApiServer, server: ApiServer
) -> None:
    """A dashboard on these names reads both servers: Toxiproxy with -runtime-metrics
    serves each of them, with the same type, beside the same proxy counters."""
    with echo_server() as upstream:
        families = {}
        for each in (real_with_metrics, server):
            with each.client() as http:
                Api(http).create_proxy(upstream.address, name="m")
                with socket.create_connection(
                    _split(http.get("/proxies/m").json()["listen"]), timeout=10
                ) as client:
                    exchange_echo(client)
                families[each.kind] = _counted_families(http)
                http.delete("/proxies/m")
    for name in PROCESS_COLLECTOR_NAMES:
        assert families["real"][name][0] == families["embedded"][name][0], name
    toxiproxy = {name for name in families["real"] if name.startswith("toxiproxy_")}
    assert toxiproxy and toxiproxy <= set(families["embedded"])


def _counted_families(http: httpx.Client) -> dict[str, tuple[str, str, list[float]]]:
    """The server's metric families once its proxy counters show the exchange: a server
    may count a connection's bytes a moment after they went through."""
    deadline = time.monotonic() + 10
    while True:
        families = _families(http.get("/metrics").text)
        counted = any(name.startswith("toxiproxy_") for name in families)
        if counted or time.monotonic() > deadline:
            return families
        time.sleep(0.05)


def exchange_echo(client: socket.socket) -> None:
    client.sendall(b"abc")
    assert recv_exactly(client, 3) == b"abc"


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _boot_time() -> float:
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise AssertionError("no btime in /proc/stat")


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")
