"""Just enough HTTP for the corpus's services, from the standard library so that each
starts in a blink: a threaded server with a route table, and a client call."""

from __future__ import annotations

import http.client
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Answer]


class App:
    """Routes (``GET /users/{id}``) to handlers."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def register(handler: Handler) -> Handler:
            self.routes.append((method, regex, handler))
            return handler

        return register

    def answer(self, method: str, target: str, headers: dict[str, str], body: Any) -> Answer:
        parts = urlsplit(target)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        for wanted, regex, handler in self.routes:
            found = regex.match(parts.path)
            if found and wanted == method:
                return handler(Request(method, parts.path, found.groupdict(), query, headers, body))
        return Answer(404, {"error": f"no route {method} {parts.path}"})

    def serve(self, port: int) -> None:
        app = self

        class Handle(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {key.lower(): value for key, value in self.headers.items()}
                answer = app.answer(self.command, self.path, headers, body)
                data = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handle)
        server.daemon_threads = True
        print(f"listening on {port}", flush=True)
        server.serve_forever()


class CallFailed(Exception):
    """A call to another service failed: no answer, a broken one, or an error status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def call(
    method: str,
    url: str,
    body: Any = None,
    *,
    timeout: float | None,
    headers: dict[str, str] | None = None,
) -> Any:
    """The decoded answer of ``method url``; CallFailed for anything but a 2xx JSON answer.
    ``timeout=None`` waits for ever (the bug some services have)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        kwargs = {} if timeout is None else {"timeout": timeout}
        with urllib.request.urlopen(request, **kwargs) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise CallFailed(f"{method} {url}: {error.code}", error.code) from None
    except (OSError, ValueError, http.client.HTTPException) as error:
        # refused, reset, timed out, cut short (IncompleteRead is no OSError), garbled
        raise CallFailed(f"{method} {url}: {type(error).__name__}: {error}") from None


def main(apps: dict[str, Callable[[], App]]) -> None:
    """``python -m corpus.services NAME PORT``."""
    name, port = sys.argv[1], int(sys.argv[2])
    apps[name]().serve(port)
