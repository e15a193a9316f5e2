"""A small HTTP service for the service tests, run as a real process:

    python app.py --port PORT [--health-status 200] [--child] [--escapee] [--ignore-term]

``GET /`` answers ``hello``, ``GET /pid`` the process id, ``GET /health`` the status given.
It prints ``listening on PORT`` once it accepts connections. ``--child`` starts a
grandchild process in the same process group, ``--escapee`` one that leaves it (setsid),
each printing ``child PID``; ``--ignore-term`` ignores SIGTERM, printing ``ignored SIGTERM``
each time. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def handler(health_status: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, body = {
                "/": (200, "hello"),
                "/pid": (200, str(os.getpid())),
                "/health": (health_status, "ok" if health_status == 200 else "not yet"),
            }.get(self.path, (404, "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            print(f"request {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--health-status", type=int, default=200)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--escapee", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, lambda *_: print("ignored SIGTERM", flush=True))
    if args.child:
        print(f"child {subprocess.Popen(SLEEPER).pid}", flush=True)
    if args.escapee:
        print(f"child {subprocess.Popen(SLEEPER, start_new_session=True).pid}", flush=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.health_status))
    server.daemon_threads = True
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
