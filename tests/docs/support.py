"""What the fragments of the docs (and of the READMEs) take for granted: the reader's
services, modules and files. tests/test_docs_site.py runs every fragment with this module as
a plugin (``-p tests.docs.support``), so its fixtures are there for them; the
``<!-- setup: ... -->`` comment above a fragment imports its functions.

Each stands in for something of the reader's, as small as the fragment allows."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from pytest_chaos import probes

from ..containers import held_image
from ..servers import start_server, stop_server

FIXED_PORTS_LOCK = Path("/tmp/pytest-chaos-docs-fixed-ports.lock")


class _Answer(BaseHTTPRequestHandler):
    """Answers every GET with 200 and ``self.server.answer()``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        body = self.server.answer()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(host: str, port: int, answer: Any) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _Answer)
    server.daemon_threads = True
    server.answer = answer  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@contextmanager
def _echo(port: int = 0) -> Iterator[str]:
    """A database, as small as it gets: on 127.0.0.1:``port`` (0: a free port), it sends
    back the first 100 bytes of each connection and closes it. Yields its address."""
    database = socket.create_server(("127.0.0.1", port))
    database.settimeout(0.2)
    stop = threading.Event()

    def answer(client: socket.socket) -> None:
        with client:
            client.settimeout(2)
            try:
                client.sendall(client.recv(100))
            except OSError:
                pass

    def answer_queries() -> None:
        while not stop.is_set():
            try:
                client, _ = database.accept()
            except OSError:
                continue
            threading.Thread(target=answer, args=(client,), daemon=True).start()

    threading.Thread(target=answer_queries, daemon=True).start()
    host, bound = database.getsockname()
    try:
        yield f"{host}:{bound}"
    finally:
        stop.set()
        database.close()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def orders(toxiproxy: Any) -> Iterator[SimpleNamespace]:
    """load.md's orders service: ``GET /orders/1`` asks its database (a line-echo server at
    ``db_address``) through the proxy "db" the test creates, and answers from its cache when
    the database takes more than 100 ms."""
    with _echo() as db_address:
        via: list[tuple[str, int]] = []
        lock = threading.Lock()

        def order() -> bytes:
            with lock:
                if not via:  # the proxy is made after the service: find it on first use
                    link = toxiproxy["db"]
                    via.append((link.host, link.port))
            try:
                with socket.create_connection(via[0], timeout=0.1) as db:
                    db.sendall(b'{"order": 1}\n')
                    return db.recv(100)
            except OSError:
                return b'{"order": 1, "cached": true}\n'

        server = _serve("127.0.0.1", 0, order)
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", db_address=db_address)
        server.shutdown()
        server.server_close()


@pytest.fixture
def shop_url(toxiproxy: Any) -> Iterator[str]:
    """README.md's shop, at the URL it yields: ``/health`` answers 200; ``/checkout`` asks
    its Redis (a line-echo server) through the proxy "redis" it creates, with a 200 ms
    timeout, and checks out without the cache when Redis does not answer."""
    with _echo() as redis_address:
        redis = toxiproxy.proxy("redis", upstream=redis_address)

        def answer() -> bytes:
            try:
                with socket.create_connection((redis.host, redis.port), timeout=0.2) as cache:
                    cache.sendall(b"GET cart\n")
                    cached = cache.recv(100) == b"GET cart\n"
            except OSError:
                cached = False
            return b"checked out" if cached else b"checked out, without the cache"

        server = _serve("127.0.0.1", 0, answer)
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        server.server_close()


@pytest.fixture
def shop_payments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's ``shop.payments`` (install_shop below), for a fragment that is a test
    module: ``pytestmark = pytest.mark.usefixtures("shop_payments")``."""
    install_shop(monkeypatch)


@pytest.fixture
def fixed_ports() -> Iterator[None]:
    """For a fragment that listens on a fixed port: one such test at a time on the machine
    (another run of the docs' tests, by another engineer or an xdist worker, waits)."""
    with FIXED_PORTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def toxiproxy_on_8474(fixed_ports: None) -> Iterator[None]:
    """README.md's drop-in server, as the README starts it (``python3 -m pytest_chaos.proxy
    --port 8474``), at toxiproxy-python's default address, 127.0.0.1:8474; and something on
    its example's upstream, 127.0.0.1:6379: the line-echo server, unless a Redis is already
    there. Not when another server has 8474: the example would use that one."""
    try:
        socket.create_server(("127.0.0.1", 8474)).close()
    except OSError as error:
        pytest.fail(
            f"127.0.0.1:8474 is taken (a Toxiproxy of docker-compose.toxiproxy.yml?), {error}"
        )
    server = start_server(
        "drop-in", [sys.executable, "-m", "pytest_chaos.proxy", "--port", "8474"], 8474
    )
    try:
        assert server.process.poll() is None, "another server answered on 127.0.0.1:8474"
        with ExitStack() as upstream:
            try:
                upstream.enter_context(_echo(6379))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
            yield
    finally:
        stop_server(server)


@pytest.fixture
def api_on_port_8080(fixed_ports: None) -> Iterator[None]:
    """experiments.md's API at http://127.0.0.1:8080: 200 to everything."""
    server = _serve("127.0.0.1", 8080, lambda: b"ok")
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture
def redis_proxy(toxiproxy: Any) -> Any:
    """experiments.md's fixture that creates the proxy "redis"."""
    return toxiproxy.proxy("redis", upstream="127.0.0.1:6379")


@pytest.fixture
def flags_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flags.md's ``flags.json``, an Unleash document, in the current directory."""
    monkeypatch.chdir(tmp_path)
    feature = {"name": "dark-mode", "enabled": True, "strategies": [{"name": "default"}]}
    (tmp_path / "flags.json").write_text(json.dumps({"version": 1, "features": [feature]}))


@pytest.fixture
def container_image() -> Iterator[str]:
    """The busybox image of tests/containers.py, one container test at a time on the
    machine: ask for it before ``service``."""
    with held_image() as image:
        yield image


# -- functions -------------------------------------------------------------------------------


def version(service: Any, name: str) -> Any:
    """canary.md's ``version()``: one instance of tests/canary/app.py, answering its name."""
    argv = [sys.executable, "-m", "tests.canary.app", "--port", "{port}", "--version", name]
    return service.process(name, argv, ready=probes.http("/health"))


def install_shop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's package ``shop``, with ``shop.payments.charge(amount)``."""
    shop, payments = ModuleType("shop"), ModuleType("shop.payments")
    payments.charge = lambda amount: amount  # type: ignore[attr-defined]
    shop.payments = payments  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shop", shop)
    monkeypatch.setitem(sys.modules, "shop.payments", payments)


APP = """\
import argparse
from http.server import HTTPServer, SimpleHTTPRequestHandler
from threading import Thread

parser = argparse.ArgumentParser()
parser.add_argument("--http", type=int)
parser.add_argument("--admin", type=int)
options = parser.parse_args()
for port in (options.admin, options.http):
    server = HTTPServer(("127.0.0.1", port), SimpleHTTPRequestHandler)
    Thread(target=server.serve_forever).start()
"""


def app_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """services.md's ``python -m app``: an app.py in the current directory, serving HTTP on
    ``--http`` and ``--admin``, and ``python`` on $PATH as this interpreter."""
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
