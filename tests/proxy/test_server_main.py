"""``python -m pytest_chaos.proxy`` as a drop-in ``toxiproxy-server``: its command line,
config file, logging, shutdown on signals, and the HTTP behaviours around the API (browser
guard, body limit, 404/405, keep-alive, bad HTTP). Everything runs as real processes over
real sockets; the in-process ServerThread is checked here too."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_chaos.proxy.api import ServerThread

from ..servers import ApiServer, free_port, start_logged_server, stop_server
from .helpers import (
    IO_TIMEOUT,
    LOOPBACK,
    TcpServer,
    connect,
    read_until_closed,
    recv_exactly,
)

MIB = 1 << 20


def server_argv(port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "pytest_chaos.proxy", "--port", str(port), *options]


def run_server(*options: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run the server command to its end (for options that make it exit at once)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_chaos.proxy", *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write_config(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "proxies.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def echoes(address: str) -> bool:
    with connect(address) as sock:
        sock.sendall(b"hello")
        return recv_exactly(sock, 5) == b"hello"


def assert_refused(address: str) -> None:
    host, _, port = address.rpartition(":")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=IO_TIMEOUT).close()


def raw_http(port: int, request: bytes) -> bytes:
    """Send raw bytes to the API and read until the server closes the connection."""
    with connect(f"{LOOPBACK}:{port}") as sock:
        sock.sendall(request)
        data, _ = read_until_closed(sock)
    return data


def api_port(server: ApiServer) -> int:
    return int(server.url.rpartition(":")[2])


# -- the command line ------------------------------------------------------------------------------


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[list[ApiServer]]:
    """Servers a test starts with its output in tmp_path/server.log; stopped afterwards."""
    started: list[ApiServer] = []
    yield started
    for process_server in started:
        if process_server.process.poll() is None:
            stop_server(process_server)


def start(logged: list[ApiServer], tmp_path: Path, *options: str) -> ApiServer:
    port = free_port()
    argv = server_argv(port, *options)
    process_server = start_logged_server("embedded", argv, port, tmp_path / "server.log")
    logged.append(process_server)
    return process_server


def server_log(tmp_path: Path) -> str:
    return (tmp_path / "server.log").read_text(errors="replace")


@pytest.mark.parametrize("spelling", ["--", "-"])
def test_config_file_creates_proxies_before_the_api_answers(
    spelling: str, tmp_path: Path, logged: list[ApiServer], echo: TcpServer
) -> None:
    listen = f"{LOOPBACK}:{free_port()}"
    config = write_config(
        tmp_path,
        [
            {"name": "db", "listen": listen, "upstream": echo.address},
            {
                "name": "cache",
                "listen": f"{LOOPBACK}:0",
                "upstream": echo.address,
                "enabled": False,
            },
        ],
    )
    server = start(logged, tmp_path, f"{spelling}config", str(config), f"{spelling}seed", "7")
    proxies = httpx.get(server.url + "/proxies").json()
    assert set(proxies) == {"db", "cache"}
    assert (proxies["db"]["listen"], proxies["db"]["enabled"]) == (listen, True)
    assert proxies["cache"]["enabled"] is False
    assert echoes(listen)
    assert "populated 2 proxies" in server_log(tmp_path)


def test_single_dash_host_and_port_are_accepted(tmp_path: Path, logged: list[ApiServer]) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "pytest_chaos.proxy", "-host", LOOPBACK, "-port", str(port)]
    server = start_logged_server("embedded", argv, port, tmp_path / "server.log")
    logged.append(server)
    assert httpx.get(server.url + "/version").json() == {"version": "2.12.0"}
    assert f"pytest-chaos proxy API listening on http://{LOOPBACK}:{port}" in server_log(tmp_path)


BAD_CONFIGS = {
    "missing": (None, "cannot read"),
    "not-json": ("[{", "not valid JSON"),
    "not-an-array": ({"name": "x"}, "JSON array"),
    "no-name": ([{"upstream": "127.0.0.1:1"}], "missing required field: name at proxy 1"),
    "bad-toxicity-type": ([{"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}], "enabled"),
    "listen-in-use": ("IN_USE", "address already in use"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_naming_the_file_and_the_problem(case: str, tmp_path: Path) -> None:
    content, problem = BAD_CONFIGS[case]
    path = tmp_path / "proxies.json"
    with socket.create_server((LOOPBACK, 0)) as busy:
        if content == "IN_USE":
            content = [
                {
                    "name": "x",
                    "listen": f"{LOOPBACK}:{busy.getsockname()[1]}",
                    "upstream": "127.0.0.1:1",
                }
            ]
        if content is not None:
            write_config(tmp_path, content)
        result = run_server("--port", str(free_port()), "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr and problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_options_exit_2() -> None:
    assert run_server("--port", "99999").returncode == 2
    assert run_server("--seed", "abc").returncode == 2
    assert run_server("--log-level", "loud").returncode == 2


def test_version_flag_prints_and_exits() -> None:
    result = run_server("-version")
    assert result.returncode == 0
    assert "2.12.0" in result.stdout


def test_api_port_in_use_exits_1_with_the_reason() -> None:
    with socket.create_server((LOOPBACK, 0)) as busy:
        result = run_server("--port", str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_listeners_and_connections_then_exits_0(
    signum: signal.Signals, tmp_path: Path, logged: list[ApiServer], echo: TcpServer
) -> None:
    listen = f"{LOOPBACK}:{free_port()}"
    config = write_config(tmp_path, [{"name": "svc", "listen": listen, "upstream": echo.address}])
    server = start(logged, tmp_path, "--config", str(config))
    with connect(listen) as open_connection, httpx.Client(base_url=server.url) as keep_alive:
        assert keep_alive.get("/proxies").status_code == 200  # an idle keep-alive client
        open_connection.sendall(b"ping")
        assert recv_exactly(open_connection, 4) == b"ping"
        server.process.send_signal(signum)
        assert server.process.wait(IO_TIMEOUT) == 0
        data, _ = read_until_closed(open_connection)
        assert data == b""
    assert_refused(listen)
    assert_refused(f"{LOOPBACK}:{api_port(server)}")
    output = server_log(tmp_path)
    assert "shutting down" in output
    assert "Traceback" not in output


def test_logs_proxy_and_toxic_events_in_toxiproxy_style(
    tmp_path: Path, logged: list[ApiServer], echo: TcpServer
) -> None:
    server = start(logged, tmp_path, "--log-level", "debug")
    with server.client() as http:
        body = {"name": "logged", "listen": f"{LOOPBACK}:0", "upstream": echo.address}
        assert http.post("/proxies", json=body).status_code == 201
        assert http.post("/proxies/logged/toxics", json={"type": "latency"}).status_code == 200
    output = server_log(tmp_path)
    line = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INF|DBG) "
    assert re.search(line + "created proxy logged", output), output
    assert re.search(line + r"added toxic latency_downstream \(latency\) to logged", output), output
    assert re.search(line + "POST /proxies 201", output), output


# -- HTTP behaviours --------------------------------------------------------------------------------


def test_browser_user_agent_is_refused(server: ApiServer) -> None:
    with server.client() as http:
        response = http.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux)"})
        assert (response.status_code, response.text) == (403, "User agent not allowed\n")
        assert http.post("/reset", headers={"User-Agent": "Mozilla/4.0"}).status_code == 403
        # as in Toxiproxy, the guard runs on matched routes only
        assert http.get("/nope", headers={"User-Agent": "Mozilla/5.0"}).status_code == 404
        assert http.get("/proxies", headers={"User-Agent": "curl/8"}).status_code == 200


def test_body_over_one_mib_is_refused_with_413(server: ApiServer) -> None:
    with server.client() as http:
        response = http.post("/proxies", content=b" " * (MIB + 1))
        assert response.status_code == 413
        assert response.json()["status"] == 413 and "1048576" in response.json()["error"]

        def chunks() -> Iterator[bytes]:
            for _ in range(17):
                yield b" " * 65536

        assert http.post("/proxies", content=chunks()).status_code == 413
        # answered before the body is read, yet the client still gets the answer, not a reset
        assert http.post("/proxies", content=b" " * (8 * MIB)).status_code == 413
        padded = b'{"name": "big", "upstream": "127.0.0.1:1"}' + b" " * (MIB - 100)
        assert http.post("/proxies", content=padded).status_code == 201, "1 MiB is allowed"
        assert http.get("/version").status_code == 200


def test_expect_100_continue(server: ApiServer) -> None:
    body = b'{"name": "cont", "upstream": "127.0.0.1:1"}'
    head = (
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with connect(f"{LOOPBACK}:{api_port(server)}") as sock:
        sock.sendall(head)
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        answer, _ = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 201 ")
    huge = (
        b"POST /proxies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
    )
    assert raw_http(api_port(server), huge % (MIB + 1)).startswith(b"HTTP/1.1 413 ")


def test_unknown_route_is_404_and_wrong_method_405(server: ApiServer) -> None:
    with server.client() as http:
        missing = http.get("/nope")
        assert (missing.status_code, missing.text) == (404, "404 page not found\n")
        assert missing.headers["content-type"] == "text/plain; charset=utf-8"
        for method, path in [("PUT", "/proxies"), ("DELETE", "/version"), ("GET", "/reset")]:
            wrong = http.request(method, path)
            assert (wrong.status_code, wrong.content) == (405, b""), f"{method} {path}"
        assert http.get("/proxies/").status_code == 404, "a trailing slash is another route"
    moved = raw_http(
        api_port(server), b"GET //proxies?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert moved.startswith(b"HTTP/1.1 301 ") and b"\r\nLocation: /proxies?x=1\r\n" in moved


def test_content_types_and_server_header(server: ApiServer, echo: TcpServer) -> None:
    with server.client() as http:
        version = http.get("/version")
        assert version.headers["server"].startswith("pytest-chaos/")
        assert version.headers["content-type"].startswith("application/json")
        body = {"name": "typed", "upstream": echo.address}
        assert http.post("/proxies", json=body).headers["content-type"] == "application/json"
        error = http.get("/proxies/nope")
        assert error.headers["content-type"] == "text/plain; charset=utf-8"
        assert error.json() == {"error": "proxy not found", "status": 404}
        metrics = http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_malformed_http_gets_400_and_the_connection_closes(server: ApiServer) -> None:
    for request in [b"garbage\r\n\r\n", b"GET /proxies HTTP/1.1\r\n\r\n", b"GET / HTTP/9\r\n\r\n"]:
        answer = raw_http(api_port(server), request)
        assert answer.startswith(b"HTTP/1.1 400 "), (request, answer)
    assert httpx.get(server.url + "/version").status_code == 200


def test_metrics_count_the_bytes_that_went_through(server: ApiServer, echo: TcpServer) -> None:
    with server.client() as http:
        proxy = http.post("/proxies", json={"name": "counted", "upstream": echo.address}).json()
        with connect(proxy["listen"]) as sock:
            sock.sendall(b"x" * 1000)
            assert recv_exactly(sock, 1000) == b"x" * 1000
        text = http.get("/metrics").text
    for metric in ("received", "sent"):
        for direction in ("upstream", "downstream"):
            pattern = (
                rf'toxiproxy_proxy_{metric}_bytes_total\{{direction="{direction}",'
                rf'[^}}]*proxy="counted"[^}}]*\}} (\d+)'
            )
            found = re.search(pattern, text)
            assert found and int(found.group(1)) == 1000, f"{metric} {direction}:\n{text}"


def test_keep_alive_and_many_concurrent_clients(server: ApiServer, echo: TcpServer) -> None:
    """32 clients, each on one keep-alive connection, create, read and delete proxies."""

    def client_session(index: int) -> list[int]:
        name = f"c{index}"
        statuses = []
        with httpx.Client(base_url=server.url, timeout=IO_TIMEOUT) as http:
            for _ in range(5):
                body = {"name": name, "upstream": echo.address}
                statuses.append(http.post("/proxies", json=body).status_code)
                statuses.append(http.get(f"/proxies/{name}").status_code)
                statuses.append(http.get("/proxies").status_code)
                statuses.append(http.delete(f"/proxies/{name}").status_code)
        return statuses

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(client_session, range(32)))
    assert all(statuses == [201, 200, 200, 204] * 5 for statuses in results), results
    assert httpx.get(server.url + "/proxies").json() == {}


# -- in-process ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["uvloop-if-installed", "asyncio"])
def test_server_thread_serves_the_api_and_stops_cleanly(fast: bool, echo: TcpServer) -> None:
    server = ServerThread(seed=1, fast=fast)
    url = server.start()
    try:
        with httpx.Client(base_url=url) as http:
            proxy = http.post("/proxies", json={"name": "t", "upstream": echo.address}).json()
        held = connect(proxy["listen"])
        held.sendall(b"ping")
        assert recv_exactly(held, 4) == b"ping"  # established through the proxy
    finally:
        server.stop()
    with held:
        data, _ = read_until_closed(held)
        assert data == b""
    assert_refused(proxy["listen"])
    assert_refused(url.removeprefix("http://"))


def test_server_thread_runs_engine_calls_on_its_loop(echo: TcpServer) -> None:
    with ServerThread(fast=False) as server:
        engine = server.engine
        assert engine is not None
        server.call(engine.create({"name": "direct", "upstream": echo.address}))
        proxies = httpx.get(server.url + "/proxies").json()
        assert list(proxies) == ["direct"]
        assert echoes(proxies["direct"]["listen"])
