"""The smallest real chaos test: a service, its dependency, and the network between them.

``greeter`` is the service under test. It asks ``names`` (its dependency) who the user is,
through the embedded Toxiproxy-compatible proxy, and it has a 300 ms timeout with a
fallback: when ``names`` is slow or hangs it still answers, with "hello, stranger".
Run it with ``python3 -m pytest examples/quickstart``.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from pytest_chaos import faults, probes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like most real services
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on small answers

    def answer(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Names(Handler):
    """The dependency: knows the user's name."""

    def do_GET(self):
        self.answer("Ada")


def greeter(names_url: str) -> type[Handler]:
    """The service under test: greets the user by name, or as a stranger when the name
    does not come back within 300 ms."""
    client = httpx.Client(timeout=0.3)

    class Greeter(Handler):
        def do_GET(self):
            try:
                name = client.get(names_url).text
            except httpx.HTTPError:  # timed out, refused, reset: fall back
                name = "stranger"
            self.answer(f"hello, {name}")

    return Greeter


def serve(handler: type[Handler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def greeter_url(toxiproxy):
    """Starts ``names``, puts the proxy "names" in front of it, and starts ``greeter``
    talking to ``names`` through the proxy."""
    names = serve(Names)
    link = toxiproxy.proxy("names", upstream=f"127.0.0.1:{names.server_port}")
    front = serve(greeter(f"http://{link.listen}/"))
    yield f"http://127.0.0.1:{front.server_port}/"
    front.shutdown()
    names.shutdown()
    front.server_close()
    names.server_close()


@pytest.mark.chaos(
    weight=3, hypothesis="the greeter answers fast, as a stranger, while names is slow"
)
def test_falls_back_when_the_dependency_is_slow(toxiproxy, greeter_url):
    assert httpx.get(greeter_url).text == "hello, Ada"
    with toxiproxy["names"].latency(ms=2000):  # removed on exit, and at teardown
        response = httpx.get(greeter_url, timeout=5)
    assert response.text == "hello, stranger"
    assert response.elapsed.total_seconds() < 1.5  # the 300 ms timeout, not the 2 s latency
    assert httpx.get(greeter_url).text == "hello, Ada"  # and back once the latency is gone


@pytest.mark.chaos(weight=5, hypothesis="the greeter keeps answering within 1 s while names hangs")
def test_steady_state_holds_while_the_dependency_hangs(chaos, greeter_url):
    journal = chaos.experiment(
        "the greeter keeps answering while names hangs",
        steady_state=[probes.http(greeter_url, body="hello, ", latency_ms_max=1000)],
        method=[faults.timeout("names", start_after_s=0.2, for_s=1.0)],  # a black hole
        strategy="continuously",  # checked before, every 0.5 s during, and after
    )
    assert journal["status"] == "completed"
    assert not journal["deviated"]
