"""The embedded proxy's own toxics: HTTP faults between processes (answer a status, hold
the response's head, cut its body) and a black hole that lets nothing through, not even a
close; a real Toxiproxy refuses each, and the client says so. Real sockets, a real HTTP
server, httpx as the client."""

from __future__ import annotations

import http.server
import time
from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest

from pytest_chaos.proxy.client import Proxy, Toxiproxy
from pytest_chaos.proxy.errors import InvalidToxic
from pytest_chaos.proxy.httpframe import Framer, Piece

from ..servers import ApiServer
from .helpers import Upstream, assert_silent, connect, http_server, recv_exactly, wait_closed

BODY = b"x" * 5000


class Answer(http.server.BaseHTTPRequestHandler):
    """200 with a 5000-byte body to GET and POST; counts the requests it saw."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        Answer.seen.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    Answer.seen = []
    with http_server(Answer) as address:
        yield address


@pytest.fixture
def proxy(server: ApiServer, origin: str) -> Iterator[Proxy]:
    with Toxiproxy(server.url) as api:
        yield api.create("web", upstream=origin)


def test_a_status_is_answered_by_the_proxy(proxy: Proxy) -> None:
    proxy.http_status(429, retry_after=7)
    with httpx.Client(base_url=f"http://{proxy.listen}", timeout=5) as client:
        answer = client.get("/orders")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert answer.headers["x-chaos-fault"] == "http_status"
    assert Answer.seen == []  # the request never reached the server


def test_only_the_chosen_requests_are_struck(proxy: Proxy) -> None:
    proxy.http_status(503, method="POST", path="/charges*")
    with httpx.Client(base_url=f"http://{proxy.listen}", timeout=5) as client:
        statuses = [
            client.get("/charges").status_code,
            client.post("/charges/7", json={"amount": 5}).status_code,
            client.post("/orders", json={"sku": "tea"}).status_code,
            client.post("/charges", json={"amount": 5}).status_code,
        ]
    assert statuses == [200, 503, 200, 503]
    assert Answer.seen == ["GET /charges", "POST /orders"]


def test_a_share_of_the_requests_is_struck_the_same_way_every_time(
    server: ApiServer, origin: str
) -> None:
    def pattern() -> list[int]:
        with Toxiproxy(server.url) as api:
            for old in api.proxies().values():
                old.delete()
            proxy = api.create("web", upstream=origin, seed=11)
            proxy.http_status(500, percent=50)
            with httpx.Client(base_url=f"http://{proxy.listen}", timeout=5) as client:
                return [client.get(f"/{n}").status_code for n in range(24)]

    first = pattern()
    assert 0 < first.count(500) < 24
    assert pattern() == first


def test_a_response_head_is_held(proxy: Proxy) -> None:
    proxy.http_latency(400)
    with httpx.Client(base_url=f"http://{proxy.listen}", timeout=5) as client:
        started = time.monotonic()
        answer = client.get("/slow")
        waited = time.monotonic() - started
    assert answer.status_code == 200 and answer.content == BODY
    assert waited >= 0.4


def test_a_body_is_cut_after_its_first_bytes(proxy: Proxy) -> None:
    proxy.http_truncate(bytes=100)
    received = b""
    with (
        httpx.Client(base_url=f"http://{proxy.listen}", timeout=5) as client,
        client.stream("GET", "/big") as answer,
    ):
        assert answer.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for piece in answer.iter_raw():
                received += piece
    assert received == BODY[:100]


def test_a_black_hole_swallows_everything_even_the_close(server: ApiServer) -> None:
    with Upstream() as upstream, Toxiproxy(server.url) as api:
        proxy = api.create("hole", upstream=upstream.address)
        client = connect(proxy.listen)
        far = upstream.accept()
        hole = [proxy.blackhole(stream="upstream"), proxy.blackhole(stream="downstream")]
        client.sendall(b"ping")
        assert_silent(far, 0.3)  # nothing reaches the server
        far.sendall(b"pong")
        far.close()  # the server hangs up: the client must not hear it
        assert_silent(client, 0.5)
        for toxic in hole:
            toxic.remove()
        assert wait_closed(client) in ("eof", "reset")  # removing it closes what it held
        client.close()


def test_without_a_black_hole_the_close_gets_through(server: ApiServer) -> None:
    """The control: the same exchange with no toxic delivers the data and the close."""
    with Upstream() as upstream, Toxiproxy(server.url) as api:
        proxy = api.create("open", upstream=upstream.address)
        client = connect(proxy.listen)
        far = upstream.accept()
        far.sendall(b"pong")
        far.close()
        assert recv_exactly(client, 4) == b"pong"
        assert wait_closed(client) == "eof"
        client.close()


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"status": 42}, "status must be from 100 to 599"),
        ({"percent": 101}, "percent must be from 0 to 100"),
        ({"method": 5}, "method must be a string"),
        ({"colour": "red"}, "unknown attribute 'colour'"),
    ],
)
def test_bad_attributes_are_refused(
    proxy: Proxy, attributes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidToxic, match=message):
        proxy.add_toxic("http_status", stream="upstream", **attributes)  # type: ignore[arg-type]


@pytest.mark.realserver
@pytest.mark.parametrize("toxic", ["http_status", "http_latency", "http_truncate", "blackhole"])
def test_a_real_toxiproxy_refuses_them_plainly(real_server: ApiServer, toxic: str) -> None:
    real_server.clear()
    with Toxiproxy(real_server.url) as api:
        proxy = api.create("web", upstream="127.0.0.1:9")
        with pytest.raises(InvalidToxic) as refused:
            proxy.add_toxic(toxic)
    assert str(refused.value) == (
        f"the Toxiproxy at {real_server.url} has no {toxic} toxic: HTTP toxics and blackhole "
        "are pytest-chaos extensions, which a real Toxiproxy refuses; use the embedded "
        "backend (--chaos-toxiproxy embedded)"
    )
    real_server.clear()


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_the_framer_finds_messages_however_the_bytes_arrive(size: int) -> None:
    stream = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        b"HTTP/1.1 500 Oops\r\n\r\nuntil the close"
    )
    framer = Framer(requests=False)
    pieces: list[Piece] = []
    for start in range(0, len(stream), size):
        pieces.extend(framer.feed(stream[start : start + size]))
    pieces.extend(framer.end_of_stream())
    statuses = [p.head.status for p in pieces if p.head is not None]
    assert statuses == [200, 204, 200, 500]
    assert [p.kind for p in pieces].count("end") == 4
    assert b"".join(p.data for p in pieces) == stream
    assert not framer.opaque


def test_what_is_not_http_passes_as_it_is() -> None:
    framer = Framer(requests=True)
    pieces = list(framer.feed(b"*1\r\n$4\r\nPING\r\n\r\n"))
    assert framer.opaque and b"".join(p.data for p in pieces) == b"*1\r\n$4\r\nPING\r\n\r\n"


def test_metrics_count_clients_and_those_that_speak_http(proxy: Proxy, server: ApiServer) -> None:
    with httpx.Client(base_url=f"http://{proxy.listen}", timeout=5) as client:
        for _ in range(3):
            client.get("/", headers={"connection": "close"})
    raw = connect(proxy.listen)
    raw.sendall(b"PING not http\r\n\r\n")
    assert raw.recv(64)  # the server answered its error: the proxy saw the bytes
    raw.close()
    metrics = httpx.get(f"{server.url}/metrics", timeout=5).text

    def count(metric: str) -> int:
        prefix = f'{metric}{{proxy="web"}} '
        return int(
            next(line for line in metrics.splitlines() if line.startswith(prefix)).split()[1]
        )

    assert count("pytest_chaos_proxy_connections_total") == 4
    assert count("pytest_chaos_proxy_http_connections_total") == 3
