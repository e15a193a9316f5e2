"""The service the Chaos Toolkit experiments of these tests break: a real HTTP server whose
health can be broken and repaired over HTTP, with a stock level and an admin page behind a
token, each instance on its own free loopback port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "s3cret-token"


class Shop(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.broken = False
        self.stock = 3

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def environment(self) -> dict[str, str]:
        """What the experiments read from the environment to find this shop."""
        return {
            "CTK_SHOP_URL": self.url,
            "CTK_SHOP_PORT": str(self.server_port),
            "CTK_SHOP_TOKEN": TOKEN,
        }


class _Handler(BaseHTTPRequestHandler):
    server: Shop
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        shop = self.server
        if self.path == "/health":
            if shop.broken:
                self._answer(503, {"status": "down"})
            else:
                self._answer(200, {"status": "up", "stock": shop.stock})
        elif self.path == "/admin":
            allowed = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self._answer(200 if allowed else 401, {"admin": allowed})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        shop = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/break":
            shop.broken = True
        elif self.path == "/repair":
            shop.broken = False
        elif self.path == "/stock":
            shop.stock = int(json.loads(body or b"0"))
        else:
            self._answer(404, {"error": "not found"})
            return
        self._answer(200, {"broken": shop.broken, "stock": shop.stock})

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def running() -> Iterator[Shop]:
    shop = Shop()
    thread = threading.Thread(target=shop.serve_forever, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        shop.shutdown()
        shop.server_close()
        thread.join()
