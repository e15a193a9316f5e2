"""Replay by identity: a toxicity draw is fixed by the seed, the proxy, the toxic and the
connection's ordinal, so connections live across toxic changes, or a probe connection that
happens to be still open, shift nothing. Checked on the engine, then through pytest runs:
five reruns, ``-k`` selection, a reversed order and pytest-xdist, all with one seed."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..servers import ApiServer, isolate_chaos_env
from .helpers import Api, Proxy, TcpServer, echo_handler, read_until_closed

CONNECTIONS = 12


def echo_and_close(sock: socket.socket) -> None:
    """Echo until the client's end of stream, then close: the client reads to the end."""
    echo_handler(sock)
    sock.close()


def draw_pattern(proxy: Proxy, probe_lingers: bool) -> str:
    """A ``1`` for each connection that ``limit_data`` (toxicity 0.5) cut, a ``0`` for each
    it left alone, while a toxic is added and another removed during each connection."""
    proxy.add_toxic("limit_data", name="cut", toxicity=0.5, bytes=1)
    probe = proxy.connect()  # a probe: closed at once, or still open during the churn
    if not probe_lingers:
        probe.close()
    bits = []
    live = []
    try:
        for index in range(CONNECTIONS):
            client = proxy.connect()
            live.append(client)
            proxy.add_toxic("noop", name=f"churn{index}", toxicity=0.5)
            if index:
                proxy.remove_toxic(f"churn{index - 1}")
            client.sendall(b"hello")
            client.shutdown(socket.SHUT_WR)
            data, _ = read_until_closed(client)
            assert data in (b"h", b"hello"), data
            bits.append("1" if data == b"h" else "0")
    finally:
        for client in [probe, *live]:
            client.close()
    return "".join(bits)


@pytest.fixture
def echo_api(server: ApiServer) -> Iterator[tuple[Api, str]]:
    with server.client() as http, TcpServer(echo_and_close) as upstream:
        yield Api(http), upstream.address


def _seeded_proxy(api: Api, upstream: str, seed: int) -> Proxy:
    spec = {"name": "replay", "listen": "127.0.0.1:0", "upstream": upstream, "seed": seed}
    info = api.call("POST", "/proxies", spec, status=201)
    return Proxy(api, "replay", info["listen"])


def test_live_connections_and_a_lingering_probe_shift_no_draw(
    echo_api: tuple[Api, str],
) -> None:
    api, upstream = echo_api
    patterns = {}
    for seed, lingers in [(11, False), (11, True), (11, False), (12, False)]:
        patterns[seed, lingers] = draw_pattern(_seeded_proxy(api, upstream, seed), lingers)
        api.call("DELETE", "/proxies/replay", status=204)
    pattern = patterns[11, False]
    assert patterns[11, True] == pattern
    assert "0" in pattern and "1" in pattern, pattern  # the draws do decide
    assert patterns[12, False] != pattern  # and the seed decides them


INNER = """
import os
from pathlib import Path

import httpx
import pytest

from tests.proxy.helpers import Api, Proxy, TcpServer
from tests.proxy.test_replay import draw_pattern, echo_and_close


@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_draws(toxiproxy, chaos_monkey, case):
    with TcpServer(echo_and_close) as upstream:
        made = toxiproxy.proxy("svc", upstream=upstream.address)
        proxy = Proxy(Api(toxiproxy_http(toxiproxy)), made.name, made.listen)
        lingers = os.environ.get("PROBE_LINGERS") == "1"
        bits = draw_pattern(proxy, lingers)

    @chaos_monkey.chaos(error=ValueError, rate=0.5)
    def charge():
        return "ok"

    calls = []
    for _ in range(12):
        try:
            charge()
            calls.append("0")
        except ValueError:
            calls.append("1")
    out = Path(os.environ["DRAWS_DIR"], case)
    out.write_text(f"proxy={bits} calls={''.join(calls)}")


def toxiproxy_http(toxiproxy):
    return httpx.Client(base_url=toxiproxy.url, timeout=10)
"""

REVERSE = """
def pytest_collection_modifyitems(items):
    items.reverse()
"""


def _draws(where: Path) -> dict[str, str]:
    found = {path.name: path.read_text() for path in where.iterdir()}
    assert all(re.fullmatch(r"proxy=[01]{12} calls=[01]{12}", v) for v in found.values()), found
    return found


def test_the_same_seed_replays_the_same_draws_however_the_tests_are_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_chaos_env(monkeypatch)
    monkeypatch.setenv("PYTHONPATH", str(pytester.path), prepend=":")
    pytester.makepyfile(test_inner=INNER)

    runs = iter(range(100))

    def run(*args: str, seed: str = "424242", probe_lingers: bool = False) -> dict[str, str]:
        out = pytester.mkdir(f"draws{next(runs)}")
        monkeypatch.setenv("DRAWS_DIR", str(out))
        monkeypatch.setenv("PROBE_LINGERS", "1" if probe_lingers else "0")
        result = pytester.runpytest_subprocess(
            "--chaos-seed", seed, "-p", "no:cacheprovider", *args
        )
        assert result.ret == 0, result.stdout.str()
        return _draws(out)

    first = run()
    assert set(first) == {"a", "b", "c"}
    assert len(set(first.values())) == 3  # each test has draws of its own
    reruns = [run() for _ in range(4)]
    assert all(rerun == first for rerun in reruns)
    assert run(probe_lingers=True) == first
    assert run("-k", "b") == {"b": first["b"]}
    pytester.makeconftest(REVERSE)
    assert run() == first
    assert run("-n", "2") == first
    assert run(seed="7") != first
