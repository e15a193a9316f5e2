"""Third-party Toxiproxy clients against the embedded server: toxiproxy-python 0.1.1 and the
official Go ``toxiproxy-cli``. Every effect a client asks for is checked through real
sockets (latency measured, connections refused while a proxy is down) or over the API."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ..servers import ApiServer, free_port
from .helpers import IO_TIMEOUT, LOOPBACK, Stopwatch, TcpServer, connect, recv_exactly

LATENCY_MS = 300


def api_state(server: ApiServer, path: str) -> Any:
    with server.client() as http:
        response = http.get(path)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


def round_trip(address: str) -> float:
    """Seconds for a fresh connection through ``address`` to echo 4 bytes."""
    with connect(address) as sock:
        watch = Stopwatch()
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        return watch()


def assert_refused(address: str) -> None:
    host, _, port = address.rpartition(":")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=IO_TIMEOUT).close()


# -- toxiproxy-python ---------------------------------------------------------------------------


@pytest.fixture
def toxiproxy(server: ApiServer) -> Iterator[Any]:
    """A toxiproxy-python client pointed at the server. Its host and port are class
    attributes of ``APIConsumer``, so they are restored afterwards."""
    client_module = pytest.importorskip("toxiproxy", reason="toxiproxy-python is not installed")
    from toxiproxy.api import APIConsumer

    saved = APIConsumer.host, APIConsumer.port
    url = urlsplit(server.url)
    client = client_module.Toxiproxy()
    client.update_api_consumer(url.hostname, url.port)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved


def test_python_client_creates_a_working_proxy(
    toxiproxy: Any, server: ApiServer, echo: TcpServer
) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="py_create")
    assert proxy.enabled is True
    assert proxy.listen.startswith(f"{LOOPBACK}:") and not proxy.listen.endswith(":0")
    assert round_trip(proxy.listen) < IO_TIMEOUT
    assert set(toxiproxy.proxies()) == {"py_create"}
    assert api_state(server, "/proxies/py_create")["upstream"] == echo.address


def test_python_client_latency_toxic_delays_and_its_removal_restores(
    toxiproxy: Any, server: ApiServer, echo: TcpServer
) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="py_latency")
    proxy.add_toxic(type="latency", attributes={"latency": LATENCY_MS})
    toxic = proxy.get_toxic("latency_downstream")
    assert (toxic.type, toxic.stream, toxic.attributes["latency"]) == (
        "latency",
        "downstream",
        LATENCY_MS,
    )
    assert round_trip(proxy.listen) >= LATENCY_MS / 1000 * 0.95
    assert proxy.destroy_toxic("latency_downstream") is True
    assert api_state(server, "/proxies/py_latency/toxics") == []
    assert round_trip(proxy.listen) < LATENCY_MS / 1000 / 2


def test_python_client_down_refuses_connections_until_the_block_ends(
    toxiproxy: Any, server: ApiServer, echo: TcpServer
) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="py_down")
    with connect(proxy.listen) as before:
        before.sendall(b"ping")
        assert recv_exactly(before, 4) == b"ping"
        with proxy.down():
            assert api_state(server, "/proxies/py_down")["enabled"] is False
            assert_refused(proxy.listen)
            before.settimeout(IO_TIMEOUT)
            try:
                assert before.recv(16) == b"", "the open connection must be closed"
            except ConnectionResetError:
                pass
    assert api_state(server, "/proxies/py_down")["enabled"] is True
    assert round_trip(proxy.listen) < IO_TIMEOUT


def test_python_client_destroy_closes_the_listener(
    toxiproxy: Any, server: ApiServer, echo: TcpServer
) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="py_destroy")
    assert toxiproxy.destroy(proxy) is True
    assert_refused(proxy.listen)
    assert toxiproxy.get_proxy("py_destroy") is None
    with server.client() as http:
        assert http.get("/proxies/py_destroy").status_code == 404


def test_python_client_populate_creates_each_proxy_once(
    toxiproxy: Any, server: ApiServer, echo: TcpServer
) -> None:
    specs = [
        {"name": f"py_pop{index}", "upstream": echo.address, "listen": f"{LOOPBACK}:{free_port()}"}
        for index in range(2)
    ]
    created = toxiproxy.populate(specs)
    assert sorted(proxy.name for proxy in created) == ["py_pop0", "py_pop1"]
    for spec in specs:
        assert api_state(server, f"/proxies/{spec['name']}")["listen"] == spec["listen"]
        assert round_trip(spec["listen"]) < IO_TIMEOUT
    assert toxiproxy.populate(specs) == [], "unchanged proxies are kept, not recreated"


def test_python_client_reset_enables_proxies_and_removes_toxics(
    toxiproxy: Any, server: ApiServer, echo: TcpServer
) -> None:
    proxy = toxiproxy.create(upstream=echo.address, name="py_reset")
    proxy.add_toxic(type="latency", attributes={"latency": LATENCY_MS})
    proxy.disable()
    assert_refused(proxy.listen)
    assert toxiproxy.reset() is True
    state = api_state(server, "/proxies/py_reset")
    assert (state["enabled"], state["toxics"]) == (True, [])
    assert round_trip(proxy.listen) < LATENCY_MS / 1000 / 2


def test_python_client_errors_map_to_its_exceptions(
    toxiproxy: Any, server: ApiServer, echo: TcpServer
) -> None:
    from toxiproxy.exceptions import InvalidToxic, NotFound

    proxy = toxiproxy.create(upstream=echo.address, name="py_errors")
    with pytest.raises(InvalidToxic, match="invalid toxic type"):
        proxy.add_toxic(type="bogus")
    with pytest.raises(NotFound, match="toxic not found"):
        proxy.destroy_toxic("nope")
    assert toxiproxy.running() is True
    assert b'"version"' in toxiproxy.version()


# -- the Go toxiproxy-cli -------------------------------------------------------------------------


def go_cli() -> str:
    """The Go CLI: $TOXIPROXY_CLI, the go-installed ``cli``, or ``toxiproxy-cli`` on PATH;
    skip without it, unless PYTEST_CHAOS_REQUIRE_REAL_TOXIPROXY=1 demands it."""
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    candidates = [
        os.environ.get("TOXIPROXY_CLI", ""),
        str(Path(gopath) / "bin" / "cli"),
        shutil.which("toxiproxy-cli") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = (
        "the Go toxiproxy-cli was not found ($TOXIPROXY_CLI, ~/go/bin/cli or toxiproxy-cli "
        "on PATH); install it with `go install github.com/Shopify/toxiproxy/v2/cmd/cli@v2.12.0`"
    )
    if os.environ.get("PYTEST_CHAOS_REQUIRE_REAL_TOXIPROXY") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class Cli:
    """Runs ``toxiproxy-cli -h <url> ...`` and asserts on its exit status."""

    def __init__(self, binary: str, url: str) -> None:
        self.binary = binary
        self.url = url

    def __call__(self, *args: str, ok: bool = True) -> str:
        result = subprocess.run(
            [self.binary, "-h", self.url, *args],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        output = result.stdout + result.stderr
        assert (result.returncode == 0) == ok, (
            f"cli {' '.join(args)} -> {result.returncode}: {output}"
        )
        return output


@pytest.fixture
def cli(server: ApiServer) -> Cli:
    return Cli(go_cli(), server.url)


def test_go_cli_manages_proxies_and_toxics(cli: Cli, server: ApiServer, echo: TcpServer) -> None:
    assert "cli_proxy" not in cli("list")
    assert "Created new proxy cli_proxy" in cli(
        "create", "-l", f"{LOOPBACK}:0", "-u", echo.address, "cli_proxy"
    )
    state = api_state(server, "/proxies/cli_proxy")
    assert state["upstream"] == echo.address and state["enabled"] is True
    assert "cli_proxy" in cli("list") and state["listen"] in cli("list")

    assert "latency_downstream" in cli(
        "toxic", "add", "-t", "latency", "-a", "latency=100", "cli_proxy"
    )
    assert _latency(server) == 100
    assert round_trip(state["listen"]) >= 0.095

    assert "Updated toxic" in cli(
        "toxic", "update", "-n", "latency_downstream", "-a", "latency=200", "cli_proxy"
    )
    assert _latency(server) == 200
    assert "latency=200" in cli("inspect", "cli_proxy")

    assert "Removed toxic" in cli("toxic", "remove", "-n", "latency_downstream", "cli_proxy")
    assert api_state(server, "/proxies/cli_proxy/toxics") == []


def test_go_cli_toggles_and_deletes(cli: Cli, server: ApiServer, echo: TcpServer) -> None:
    cli("create", "-l", f"{LOOPBACK}:0", "-u", echo.address, "cli_toggle")
    listen = api_state(server, "/proxies/cli_toggle")["listen"]

    assert "disabled" in cli("toggle", "cli_toggle")
    assert api_state(server, "/proxies/cli_toggle")["enabled"] is False
    assert_refused(listen)

    assert "enabled" in cli("toggle", "cli_toggle")
    assert api_state(server, "/proxies/cli_toggle")["enabled"] is True
    assert round_trip(listen) < IO_TIMEOUT

    assert "Deleted proxy cli_toggle" in cli("delete", "cli_toggle")
    assert_refused(listen)
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/proxies/cli_toggle").status_code == 404


def test_go_cli_reports_server_errors(cli: Cli, server: ApiServer, echo: TcpServer) -> None:
    assert "proxy not found" in cli("delete", "cli_missing", ok=False)
    cli("create", "-l", f"{LOOPBACK}:0", "-u", echo.address, "cli_errors")
    assert "invalid toxic type" in cli("toxic", "add", "-t", "bogus", "cli_errors", ok=False)
    assert "already exists" in cli(
        "create", "-l", f"{LOOPBACK}:0", "-u", echo.address, "cli_errors", ok=False
    )


def _latency(server: ApiServer) -> int:
    toxic = api_state(server, "/proxies/cli_proxy/toxics/latency_downstream")
    return int(toxic["attributes"]["latency"])
