"""A service version for release tests, run as a process: it answers ``GET /`` with its
version name, after ``--delay-ms`` (plus up to ``--jitter-ms``, seeded), failing
``--error-rate`` of the requests with a 500; ``GET /health`` always answers 200.

Two ways to be unlike a steady service: ``--fail-first N`` answers 500 to its first N
requests (a cold start), and ``--slowdown-ms-per-s S`` adds S ms for every second since
``--epoch`` (a wall-clock time; processes given the same one slow down alike, as a machine
getting busier would slow them).

    python app.py --port 8001 --version v2 --delay-ms 5 --jitter-ms 5 --error-rate 0.01
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", default="v1")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--slowdown-ms-per-s", type=float, default=0.0)
    parser.add_argument("--epoch", type=float, default=time.time())
    options = parser.parse_args()
    rng = random.Random(options.seed)
    lock = threading.Lock()
    served = [0]

    class Version(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body leave in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold the body back ~40 ms on a kept-alive connection
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(200, b"ok")
                return
            with lock:
                jitter, roll = rng.random() * options.jitter_ms, rng.random()
                served[0] += 1
                cold = served[0] <= options.fail_first
            drift = options.slowdown_ms_per_s * max(0.0, time.time() - options.epoch)
            time.sleep((options.delay_ms + jitter + drift) / 1000)
            failed = cold or roll < options.error_rate
            self._answer(500 if failed else 200, options.version.encode())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", options.port), Version)
    server.daemon_threads = True
    print(f"serving {options.version} on {options.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
