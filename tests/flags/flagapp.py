"""A service under test that reads a feature flag over OFREP, as a process: ``GET /checkout``
answers ``new`` when the flag ``new-checkout`` is on for the user, ``old`` when it is off,
and ``old`` too when the flag server is slow or down (a 100 ms timeout, then the default).

    FLAGS_URL=http://127.0.0.1:8016 python flagapp.py --port 8001
"""

from __future__ import annotations

import argparse
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    flags = httpx.Client(base_url=os.environ["FLAGS_URL"], timeout=0.1)

    def checkout_is_new(user: str) -> bool:
        try:
            answer = flags.post(
                "/ofrep/v1/evaluate/flags/new-checkout", json={"context": {"targetingKey": user}}
            )
        except httpx.HTTPError:
            return False  # the flag plane is broken: the default, never an error
        return answer.status_code == 200 and answer.json().get("value") is True

    class Checkout(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/health":
                body = b"ok"
            else:
                user = parse_qs(url.query).get("user", ["anonymous"])[0]
                body = b"new" if checkout_is_new(user) else b"old"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Checkout)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
