"""The typed client against the embedded and the real server: one code path for both."""

from __future__ import annotations

import socket
import time

import pytest

from pytest_chaos.proxy.client import Toxiproxy
from pytest_chaos.proxy.errors import InvalidToxic, ProxyExists, ProxyNotFound, ToxicNotFound

from ..servers import ApiServer


@pytest.fixture
def api(api_server: ApiServer) -> Toxiproxy:  # type: ignore[misc]
    with Toxiproxy(api_server.url) as client:
        yield client


@pytest.fixture
def echo_address() -> str:  # type: ignore[misc]
    """A real echo server on loopback, in a thread, for one test."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _round_trip(host: str, port: int) -> float:
    with socket.create_connection((host, port), timeout=10) as sock:
        start = time.perf_counter()
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
        return time.perf_counter() - start


def test_create_get_and_list(api: Toxiproxy, echo_address: str) -> None:
    proxy = api.create("db", upstream=echo_address)
    assert proxy.port > 0 and proxy.host == "127.0.0.1"
    assert api["db"].listen == proxy.listen
    assert list(api.proxies()) == ["db"]
    assert _round_trip(proxy.host, proxy.port) < 1


def test_errors_carry_the_server_message(api: Toxiproxy, echo_address: str) -> None:
    proxy = api.create("db", upstream=echo_address)
    with pytest.raises(ProxyExists, match="proxy already exists"):
        api.create("db", upstream=echo_address)
    with pytest.raises(ProxyNotFound):
        api.get("nope")
    with pytest.raises(InvalidToxic, match="invalid toxic type"):
        proxy.add_toxic("bogus")
    with pytest.raises(ToxicNotFound):
        proxy.toxic("nope")


def test_latency_as_context_manager_is_undone(api: Toxiproxy, echo_address: str) -> None:
    proxy = api.create("db", upstream=echo_address)
    with proxy.latency(200) as toxic:
        assert toxic.name == "latency_downstream"
        assert toxic.attributes == {"latency": 200, "jitter": 0}
        assert _round_trip(proxy.host, proxy.port) >= 0.19
    assert proxy.toxics() == []
    assert _round_trip(proxy.host, proxy.port) < 0.15


def test_toxic_update_and_remove(api: Toxiproxy, echo_address: str) -> None:
    proxy = api.create("db", upstream=echo_address)
    toxic = proxy.bandwidth(100, stream="upstream", toxicity=0.5)
    toxic.update(rate=50, toxicity=1.0)
    assert proxy.toxic(toxic.name).attributes == {"rate": 50}
    assert proxy.toxic(toxic.name).toxicity == 1
    toxic.remove()
    with pytest.raises(ToxicNotFound):
        toxic.remove()
    toxic.remove(missing_ok=True)


def test_down_refuses_connections_and_comes_back(api: Toxiproxy, echo_address: str) -> None:
    proxy = api.create("db", upstream=echo_address)
    with proxy.down():
        assert not api["db"].enabled
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((proxy.host, proxy.port), timeout=5).close()
    assert api["db"].enabled
    assert _round_trip(proxy.host, proxy.port) < 1


def test_populate_and_reset(api: Toxiproxy, echo_address: str) -> None:
    proxies = api.populate([{"name": "a", "upstream": echo_address, "listen": "127.0.0.1:0"}])
    assert [p.name for p in proxies] == ["a"]
    proxies[0].limit_data(10)
    proxies[0].disable()
    api.reset()
    assert api["a"].enabled and api["a"].toxics() == []
