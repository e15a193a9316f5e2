"""The engine in-process: seeded toxicity draws and validation of what the API passes in."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from pytest_chaos.proxy.engine import Engine, split_address
from pytest_chaos.proxy.errors import BadRequest, InvalidToxic
from pytest_chaos.proxy.registry import parse_toxic


async def _echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _toxicity_pattern(
    seed: int, connections: int, proxy_seed: int | None = None
) -> list[bool]:
    """Which of ``connections`` sequential clients a toxicity-0.5 ``limit_data`` hit:
    a hit connection is closed without an echo, a spared one echoes."""
    server, port = await _echo_server()
    engine = Engine(seed=seed)
    spec = {"name": "p", "upstream": f"127.0.0.1:{port}", "seed": proxy_seed}
    proxy = await engine.create(spec)
    engine.add_toxic("p", {"type": "limit_data", "toxicity": 0.5, "attributes": {"bytes": 0}})
    host, listen_port = split_address(proxy.listen, "listen")
    hits = []
    for _ in range(connections):
        reader, writer = await asyncio.open_connection(host, listen_port)
        writer.write(b"ping")
        await writer.drain()
        hits.append(await asyncio.wait_for(reader.read(4), 10) == b"")
        writer.close()
    await engine.close()
    server.close()
    return hits


def test_toxicity_draws_replay_with_the_same_seed() -> None:
    first = asyncio.run(_toxicity_pattern(seed=7, connections=40))
    again = asyncio.run(_toxicity_pattern(seed=7, connections=40))
    other = asyncio.run(_toxicity_pattern(seed=8, connections=40))
    assert first == again
    assert first != other
    assert 8 <= sum(first) <= 32, first  # a fair coin, not a constant


def test_a_proxy_seed_overrides_the_engine_seed() -> None:
    """The ``seed`` extension of POST /proxies: a test's proxy draws the same toxicity
    whatever the server's own seed, so the test replays on any server."""
    one = asyncio.run(_toxicity_pattern(seed=1, connections=30, proxy_seed=99))
    two = asyncio.run(_toxicity_pattern(seed=2, connections=30, proxy_seed=99))
    assert one == two
    assert one != asyncio.run(_toxicity_pattern(seed=1, connections=30, proxy_seed=100))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "latency", "toxicity": 1.5}, "toxicity must be between 0 and 1"),
        ({"type": "latency", "toxicity": "high"}, "toxicity must be a number"),
        ({"type": "latency", "attributes": {"latncy": 5}}, "unknown attribute 'latncy'"),
        ({"type": "latency", "attributes": {"latency": -5}}, "must not be negative"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, "must be an integer"),
        ({"type": "bandwidth", "attributes": {"rate": "fast"}}, "must be an integer"),
        ({"type": "bandwidth", "attributes": []}, "attributes must be a JSON object"),
        ({"type": "nope"}, "invalid toxic type"),
        ({"type": "latency", "stream": "both"}, "stream was invalid"),
    ],
)
def test_invalid_toxics_are_refused_with_a_reason(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidToxic, match=message) as raised:
        parse_toxic(spec)
    assert raised.value.status == 400


def test_toxic_defaults_follow_toxiproxy() -> None:
    toxic = parse_toxic({"type": "slicer", "stream": "UpStream"})
    assert toxic.to_json() == {
        "name": "slicer_upstream",
        "type": "slicer",
        "stream": "upstream",
        "toxicity": 1,
        "attributes": {"average_size": 0, "size_variation": 0, "delay": 0},
    }


@pytest.mark.parametrize("address", ["nohost", "127.0.0.1:http", "127.0.0.1:70000", ""])
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(BadRequest, match="must be host:port"):
        split_address(address, "upstream")


def test_ipv6_addresses_split() -> None:
    assert split_address("[::1]:8474", "listen") == ("::1", 8474)


async def _tasks_left_after_limit_data_closes() -> set[asyncio.Task[object]]:
    server, port = await _echo_server()
    engine = Engine(seed=1)
    proxy = await engine.create({"name": "p", "upstream": f"127.0.0.1:{port}"})
    engine.add_toxic("p", {"type": "limit_data", "attributes": {"bytes": 2}})
    host, listen_port = split_address(proxy.listen, "listen")
    reader, writer = await asyncio.open_connection(host, listen_port)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.read(), 10) == b"pi"
    writer.close()
    for _ in range(50):  # let every callback of the close run
        await asyncio.sleep(0)
    left = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    await engine.close()
    server.close()
    return left


def test_a_connection_closed_from_its_own_pipeline_leaves_no_task() -> None:
    """limit_data closes the connection from inside the pump, which cannot cancel itself;
    the pump must still end rather than wait forever."""
    left = asyncio.run(_tasks_left_after_limit_data_closes())
    assert not [t for t in left if "_run_pump" in repr(t)], left


@pytest.mark.parametrize(("average", "variation"), [(8, 2), (8, 8), (4, 50), (1, 0)])
def test_slicer_cuts_are_in_bounds_even_with_wild_variation(average: int, variation: int) -> None:
    """Toxiproxy panics when size_variation >= average_size; the engine keeps every piece
    non-empty and inside the data, whatever the draw."""
    import random

    toxic = parse_toxic(
        {"type": "slicer", "attributes": {"average_size": average, "size_variation": variation}}
    )
    rng = random.Random(3)
    for size in (1, 2, 7, 100, 4096):
        cuts = toxic.cut(rng, 0, size)  # type: ignore[attr-defined]
        assert cuts[0] == 0 and cuts[-1] == size
        assert all(a < b for a, b in itertools.pairwise(cuts)), cuts
