"""Hypothesis fuzzing of the embedded API: thousands of malformed requests, over raw sockets
and through httpx, against a dedicated server process whose output the module reads.

Every request must get an HTTP answer below 500 (or, for bytes that are not HTTP, a clean
close); the only 500s allowed are bind errors (``listen tcp ...``), as in Toxiproxy. After
each test the server must still answer, and its log must hold no traceback and no error
line. Examples are derandomized, so every run sends the same requests.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from pytest_chaos.proxy.api import ServerThread

from ..servers import ApiServer, free_port, start_logged_server, stop_server
from .helpers import LOOPBACK, connect, read_until_closed

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=600,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MIB = 1 << 20
STATUS_LINE = re.compile(rb"^HTTP/1\.1 (\d{3}) ", re.MULTILINE)
TOXIC_TYPES = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
               "limit_data", "noop"]  # fmt: skip
ATTRIBUTES = ["latency", "jitter", "rate", "delay", "timeout", "average_size",
              "size_variation", "bytes"]  # fmt: skip


@dataclass
class Fuzzed:
    """The dedicated server, a proxy and a toxic to aim requests at, and the busy port."""

    server: ApiServer
    log: Path
    busy_port: int

    @property
    def port(self) -> int:
        return int(self.server.url.rpartition(":")[2])


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    port = free_port()
    argv = [sys.executable, "-m", "pytest_chaos.proxy", "--port", str(port), "--seed", "5"]
    server = start_logged_server("embedded", argv, port, log)
    with socket.create_server((LOOPBACK, 0)) as busy:
        yield Fuzzed(server, log, busy.getsockname()[1])
    stop_server(server)


@pytest.fixture(autouse=True)
def server_survives(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that fuzzed the server: it must still answer, with a clean log."""
    yield
    if "fuzzed" in request.fixturenames:
        assert_alive(request.getfixturevalue("fuzzed"))


@pytest.fixture
def http(fuzzed: Fuzzed) -> Iterator[httpx.Client]:
    """One keep-alive client per test, and the targets it aims at, made afresh: proxy
    ``fz`` (whose upstream is the busy port) with the latency toxic ``lat``."""
    with httpx.Client(base_url=fuzzed.server.url, timeout=10) as client:
        for name in client.get("/proxies").json():  # whatever earlier fuzzing left behind
            if "/" in name:  # no URL addresses it, as in Toxiproxy; it stays, harmlessly
                continue
            assert client.delete(f"/proxies/{path_of(name)}").status_code == 204, name
        upstream = f"{LOOPBACK}:{fuzzed.busy_port}"
        assert client.post("/proxies", json={"name": "fz", "upstream": upstream}).status_code == 201
        toxic = {"name": "lat", "type": "latency", "attributes": {"latency": 1}}
        assert client.post("/proxies/fz/toxics", json=toxic).status_code == 200
        yield client


def assert_alive(fuzzed: Fuzzed) -> None:
    """The server still answers, and nothing so far raised inside it (no traceback, no
    error line in its log)."""
    with fuzzed.server.client() as client:
        assert client.get("/version").json() == {"version": "2.12.0"}
        proxies = client.get("/proxies")
        assert proxies.status_code == 200 and isinstance(proxies.json(), dict)
    assert fuzzed.server.process.poll() is None, "the server died"
    lines = fuzzed.log.read_text(errors="replace").splitlines()
    problems = [line for line in lines if " ERR " in line or " FTL " in line or "Traceback" in line]
    assert not problems, "the server logged errors:\n" + "\n".join(problems[:20])


# -- what an answer may be -------------------------------------------------------------------------


def is_bind_error(body: bytes) -> bool:
    """Toxiproxy's one documented 500: the proxy cannot listen on its address."""
    try:
        error = json.loads(body).get("error", "")
    except (ValueError, AttributeError):
        return False
    return isinstance(error, str) and error.startswith("listen tcp ")


def assert_acceptable(response: httpx.Response) -> None:
    ok = response.status_code < 500 or is_bind_error(response.content)
    assert ok, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )


def assert_raw_answers(data: bytes) -> None:
    """Raw bytes back from the server: nothing (a clean close) or HTTP answers below 500."""
    if not data:
        return
    statuses = [int(status) for status in STATUS_LINE.findall(data)]
    assert data.startswith(b"HTTP/1.1 ") and statuses, f"not an HTTP answer: {data[:200]!r}"
    assert all(status < 500 for status in statuses), data[:500]


def send_raw(fuzzed: Fuzzed, payload: bytes) -> bytes:
    """Send ``payload``, half-close, and read everything until the server closes."""
    with connect(f"{LOOPBACK}:{fuzzed.port}") as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        data, _ = read_until_closed(sock)
    return data


# -- strategies --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
names = st.text(max_size=40) | st.sampled_from(["fz", "lat", "a/b", "..", "%2F", "ü", "\ud800"])


def listens(fuzzed: Fuzzed) -> st.SearchStrategy[str]:
    """Listen addresses that can only ever bind on loopback: valid ones, one in use, and
    malformed ones (no colon, bad ports) that must be refused."""
    valid = [f"{LOOPBACK}:0", "[::1]:0", "localhost:0", f"{LOOPBACK}:{fuzzed.busy_port}"]
    malformed = [f"{LOOPBACK}:99999", f"{LOOPBACK}:-1", f"{LOOPBACK}:", "nohost", "[::1]",
                 "256.0.0.1:0", "host.invalid:0"]  # fmt: skip
    return st.sampled_from(valid + malformed) | st.text(max_size=30).filter(lambda s: ":" not in s)


def proxy_specs(fuzzed: Fuzzed) -> st.SearchStrategy[Any]:
    """Proxy bodies with every field missing, valid, or of any JSON type."""
    fields = {
        "name": names | json_values,
        "listen": listens(fuzzed) | json_values,
        "upstream": st.text(max_size=30) | st.just(f"{LOOPBACK}:1") | json_values,
        "enabled": st.booleans() | json_values,
    }
    objects = st.fixed_dictionaries({}, optional=fields)
    return objects | json_values


toxic_specs = (
    st.fixed_dictionaries(
        {},
        optional={
            "name": names | json_values,
            "type": st.sampled_from(TOXIC_TYPES) | json_values,
            "stream": st.sampled_from(["upstream", "downstream", "UpStream", "sideways"])
            | json_values,
            "toxicity": st.floats() | st.integers() | json_values,
            "attributes": st.dictionaries(
                st.sampled_from(ATTRIBUTES) | st.text(max_size=10),
                st.integers() | st.floats() | json_values,
                max_size=4,
            )
            | json_values,
        },
    )
    | json_values
)


def path_of(name: str) -> str:
    """A proxy or toxic name as one path segment (lone surrogates too, so no test trips)."""
    return quote(name.encode("utf-8", "surrogatepass"), safe="")


def encode(value: Any) -> bytes:
    """JSON as a client would send it (NaN and Infinity included, which servers refuse)."""
    return json.dumps(value).encode("utf-8", "surrogatepass")


# -- the fuzz tests ----------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_proxy_bodies_of_every_shape(
    fuzzed: Fuzzed, http: httpx.Client, data: st.DataObject
) -> None:
    spec = data.draw(proxy_specs(fuzzed))
    created = http.post("/proxies", content=encode(spec))
    assert_acceptable(created)
    if created.status_code == 201:
        assert_acceptable(http.delete(f"/proxies/{path_of(created.json()['name'])}"))
    method = data.draw(st.sampled_from(["POST", "PATCH"]))
    update = data.draw(proxy_specs(fuzzed))
    assert_acceptable(http.request(method, "/proxies/fz", content=encode(update)))
    specs = data.draw(st.lists(proxy_specs(fuzzed), max_size=3))
    populated = http.post("/populate", content=encode(specs))
    assert_acceptable(populated)
    for proxy in populated.json().get("proxies") or [] if populated.status_code == 201 else []:
        if proxy["name"] != "fz":
            http.delete(f"/proxies/{path_of(proxy['name'])}")


@FUZZ
@given(spec=toxic_specs, update=toxic_specs, method=st.sampled_from(["POST", "PATCH"]))
def test_toxic_bodies_of_every_shape(
    http: httpx.Client, spec: Any, update: Any, method: str
) -> None:
    added = http.post("/proxies/fz/toxics", content=encode(spec))
    assert_acceptable(added)
    if added.status_code == 200:
        name = path_of(added.json()["name"])
        assert_acceptable(
            http.request(method, f"/proxies/fz/toxics/{name}", content=encode(update))
        )
        if name != "lat":
            assert_acceptable(http.delete(f"/proxies/fz/toxics/{name}"))
    assert_acceptable(http.request(method, "/proxies/fz/toxics/lat", content=encode(update)))


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]
PATHS = [
    "/proxies", "/proxies/fz", "/proxies/fz/toxics", "/proxies/fz/toxics/lat", "/populate",
    "/reset", "/version", "/metrics", "/", "//proxies", "/proxies/", "/proxies/fz/../fz",
    "/proxies/%2e%2e", "/%00", "/proxies/x?y=%zz", "*", "http://fuzz/proxies",
]  # fmt: skip
visible = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
header_names = st.sampled_from(["User-Agent", "Content-Type", "Accept", "Expect", "Cookie"])
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@FUZZ
@given(
    method=st.sampled_from(METHODS) | st.from_regex(r"\A[A-Z]{1,10}\Z"),
    path=st.sampled_from(PATHS) | st.text(alphabet=visible, max_size=40).map(lambda p: "/" + p),
    headers=st.dictionaries(
        header_names | st.from_regex(r"\AX-[A-Za-z]{1,8}\Z"), header_values, max_size=3
    ),
    body=st.binary(max_size=200) | json_values.map(encode),
)
def test_random_methods_paths_headers_and_bodies(
    fuzzed: Fuzzed, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    if method in ("DELETE", "POST", "PATCH", "PUT") and path.startswith(("/reset", "/proxies/fz")):
        path = "/version"  # keep the fuzz target in place; other paths are fair game
    head = f"{method} {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert_raw_answers(send_raw(fuzzed, request))


@FUZZ
@given(garbage=st.binary(min_size=1, max_size=2000))
def test_garbage_bytes(fuzzed: Fuzzed, garbage: bytes) -> None:
    assert_raw_answers(send_raw(fuzzed, garbage))


@FUZZ
@given(data=st.data())
def test_truncated_requests(fuzzed: Fuzzed, data: st.DataObject) -> None:
    body = encode({"name": "trunc", "upstream": f"{LOOPBACK}:1"})
    request = (
        b"POST /proxies/fz/toxics HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    chunked = b"POST /proxies HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[1,2]\r\n0\r\n\r\n"
    whole = data.draw(st.sampled_from([request, chunked]))
    cut = data.draw(st.integers(0, len(whole) - 1))
    assert_raw_answers(send_raw(fuzzed, whole[:cut]))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 200_000, id="deep-nesting"),
        pytest.param(b'{"name": ' + b"9" * 5000 + b"}", id="5000-digit-integer"),
        pytest.param(b'{"name": NaN}', id="nan"),
        pytest.param(b'{"name": "\xff\xfe"}', id="invalid-utf8"),
        pytest.param(b'{"name": "\\ud800", "upstream": "127.0.0.1:1"}', id="lone-surrogate"),
        pytest.param(b"\xef\xbb\xbf{}", id="byte-order-mark"),
        pytest.param(b" " * (MIB + 1), id="over-1-mib"),
        pytest.param(b"{" * MIB, id="exactly-1-mib"),
    ],
)
def test_hostile_bodies(http: httpx.Client, body: bytes) -> None:
    for path in (
        "/proxies",
        "/populate",
        "/proxies/fz",
        "/proxies/fz/toxics",
        "/proxies/fz/toxics/lat",
    ):
        response = http.post(path, content=body)
        assert_acceptable(response)
        assert response.status_code in (200, 201, 400, 413), (
            path,
            response.status_code,
            response.text,
        )
        if response.status_code == 201:
            http.delete(f"/proxies/{path_of(response.json()['name'])}")


def test_huge_head_and_many_headers(fuzzed: Fuzzed) -> None:
    long_header = b"GET /version HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (200 * 1024) + b"\r\n\r\n"
    assert_raw_answers(send_raw(fuzzed, long_header))
    many = b"GET /version HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n"
    assert_raw_answers(send_raw(fuzzed, many))


def test_listen_host_that_idna_cannot_encode_is_a_clean_error() -> None:
    """On an in-process server of its own, so the traceback stays out of the fuzz log."""
    with ServerThread(fast=False) as server, httpx.Client(base_url=server.url) as client:
        spec = {"name": "idna", "listen": "a..b:0", "upstream": "x:1"}
        response = client.post("/proxies", json=spec)
    assert response.status_code < 500 or is_bind_error(response.content), response.text


def test_metrics_stay_valid_prometheus_text_whatever_the_addresses() -> None:
    """Prometheus's own parser reads every line back, labels unescaped to what was sent."""
    with ServerThread(fast=False) as server, httpx.Client(base_url=server.url) as client:
        spec = {"name": 'q"\n', "listen": 'a"b\nc:0', "upstream": 'u"\n:1', "enabled": False}
        assert client.post("/proxies", json=spec).status_code == 201
        text = client.get("/metrics").text
    samples = [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("toxiproxy_")
    ]
    assert len(samples) == 4, text
    for sample in samples:
        assert sample.labels["proxy"] == 'q"\n'
        assert sample.labels["listener"] == 'a"b\nc:0'
        assert sample.labels["upstream"] == 'u"\n:1'
