"""Chains of any length pass every byte in order, on both servers: a connection open
while more than a thousand toxics are added, data through all of them, and data after they
are removed again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from ..servers import ApiServer
from .helpers import Api, Proxy, echo_server, echo_through

#: Each kind passes data unchanged, however many there are (bandwidth: fast enough).
KINDS = [("latency", {"latency": 0}), ("noop", {}), ("bandwidth", {"rate": 1_000_000})]


@pytest.fixture
def echo_proxy(api_server: ApiServer) -> Iterator[Proxy]:
    with api_server.client() as http, echo_server() as upstream:
        yield Api(http).create_proxy(upstream.address)


def _add_chain(proxy: Proxy, length: int) -> list[str]:
    names = []
    for index in range(length):
        kind, attributes = KINDS[index % len(KINDS)]
        stream = "downstream" if index % 2 else "upstream"
        names.append(proxy.add_toxic(kind, stream, name=f"t{index}", **attributes))
    return names


@pytest.mark.parametrize("length", [1000, 1500])
def test_a_long_chain_passes_every_byte_in_order(echo_proxy: Proxy, length: int) -> None:
    with echo_proxy.connect() as live:  # open before the chain, as well as after it
        _add_chain(echo_proxy, length)
        for client in (live, echo_proxy.connect()):
            payload = os.urandom(256 * 1024)
            echoed = echo_through(client, payload, timeout=60)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()


def test_bytes_held_by_a_long_chain_arrive_once_it_is_removed(echo_proxy: Proxy) -> None:
    """Data sent through 1,000 toxics on a live connection, then the toxics removed while
    more data flows: every byte arrives, in order."""
    names = _add_chain(echo_proxy, 1000)
    with echo_proxy.connect() as client:
        first = os.urandom(64 * 1024)
        assert echo_through(client, first, timeout=60) == first
        for name in names:
            echo_proxy.remove_toxic(name)
        second = os.urandom(64 * 1024)
        assert echo_through(client, second, timeout=60) == second
    assert echo_proxy.toxics() == []
