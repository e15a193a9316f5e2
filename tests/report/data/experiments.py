"""Three small experiments for the report tests: one passes, one deviates, one is halted.

The tests run this file in a subprocess with ``--chaos-report``; ``session/`` holds one such
run (``pytest -p no:cacheprovider --chaos-seed 1234 --chaos-report session experiments.py``,
without its report.html) for the tests that only render.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from pytest_chaos import faults, probes


class Stock(BaseHTTPRequestHandler):
    """The dependency: answers the stock level at once."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.reply(b"3")

    def reply(self, body: bytes) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (the halt probe's short timeout)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def shop(stock_url: str, timeout_s: float) -> type[Stock]:
    """The service under test: asks for stock, waiting at most ``timeout_s``."""
    client = httpx.Client(timeout=timeout_s)

    class Shop(Stock):
        def do_GET(self) -> None:
            try:
                self.reply(client.get(stock_url).content)
            except httpx.HTTPError:
                self.reply(b"?")

    return Shop


@pytest.fixture
def shop_url(toxiproxy: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    stock = serve(Stock)
    link = toxiproxy.proxy("stock", upstream=f"127.0.0.1:{stock.server_port}")
    front = serve(shop(f"http://{link.listen}/", request.param))
    yield f"http://127.0.0.1:{front.server_port}"
    front.shutdown()
    stock.shutdown()


def hypothesis(url: str) -> list[probes.Probe]:
    return [
        probes.http(url + "/order", status=200, timeout=1, name="order"),
        probes.slo(error_rate_max=0.01, p99_ms_max=400),
    ]


@pytest.mark.parametrize("shop_url", [0.1], indirect=True)
@pytest.mark.chaos(weight=5, hypothesis="orders answer while the stock service hangs")
def test_careful_shop(chaos: Any, shop_url: str) -> None:
    chaos.experiment(
        "a careful shop answers while its stock service hangs",
        steady_state=hypothesis(shop_url),
        method=[faults.timeout("stock", start_after_s=0.3, for_s=0.8)],
        load=chaos.load.http(shop_url + "/order", rps=20, duration_s=30),
        strategy="continuously",
        frequency_s=0.4,
        settle_s=0.4,
    )


@pytest.mark.parametrize("shop_url", [5], indirect=True)
@pytest.mark.chaos(weight=3, hypothesis="a naive shop hangs with its stock service")
def test_naive_shop(chaos: Any, shop_url: str) -> None:
    chaos.experiment(
        "a naive shop hangs with its stock service",
        steady_state=hypothesis(shop_url),
        method=[faults.latency("stock", ms=600, start_after_s=0.3, for_s=0.8)],
        load=chaos.load.http(shop_url + "/order", rps=20, duration_s=30),
        strategy="continuously",
        frequency_s=0.4,
        settle_s=0.4,
    )


@pytest.mark.parametrize("shop_url", [5], indirect=True)
@pytest.mark.chaos(weight=2, hypothesis="the halt stops a hung shop")
def test_halted_shop(chaos: Any, shop_url: str) -> None:
    chaos.experiment(
        "a hung shop is halted",
        steady_state=hypothesis(shop_url),
        method=[faults.timeout("stock", start_after_s=0.3, for_s=20)],
        halt=[probes.http(shop_url + "/order", status=200, timeout=0.3, name="halt order")],
        load=chaos.load.http(shop_url + "/order", rps=20, duration_s=30),
        frequency_s=0.2,
        settle_s=0.4,
    )
