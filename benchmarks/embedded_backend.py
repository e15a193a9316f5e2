"""Thread or subprocess for the embedded backend? Latency-toxic accuracy while the test
process keeps a core busy, for both, in one run.

The pytest process hosts the test; a CPU-bound Python thread in it stands for a test that
computes while chaos runs. A server thread in the same process competes with it for the GIL;
a server subprocess does not. Each variant proxies a local echo server with a 50 ms latency
toxic, and a separate client process times round trips, so that only the proxy's share of
the error is measured.

    python3 benchmarks/embedded_backend.py [--round-trips 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from pytest_chaos.leftovers.supervisor import Supervisor
from pytest_chaos.proxy.api import ServerThread
from pytest_chaos.proxy.backends import embedded_backend

LATENCY_MS = 50


ECHO = """
import socket, threading
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
def echo(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
"""


def echo_server() -> tuple[subprocess.Popen[str], str]:
    """An echo server in a process of its own, out of reach of this process's GIL."""
    process = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, f"127.0.0.1:{process.stdout.readline().strip()}"


@contextmanager
def busy_core() -> Iterator[None]:
    """A pure-Python loop in this process: it holds the GIL whenever it can."""
    stop = threading.Event()

    def spin() -> None:
        total = 0
        while not stop.is_set():
            for i in range(10_000):
                total += i * i

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


CLIENT = """
import json, socket, sys, time
host, port, count, latency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
errors = []
with socket.create_connection((host, port)) as sock:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(count):
        start = time.perf_counter()
        sock.sendall(b"x" * 64)
        received = 0
        while received < 64:
            received += len(sock.recv(64))
        errors.append((time.perf_counter() - start) * 1000 - latency)
print(json.dumps(errors))
"""


def round_trip_errors(api_url: str, upstream: str, round_trips: int) -> list[float]:
    """Errors in ms of (round trip - latency) through a latency toxic, timed by a client
    process while this process keeps a core busy."""
    with httpx.Client(base_url=api_url, timeout=10) as http:
        http.post("/proxies", json={"name": "bench", "upstream": upstream}).raise_for_status()
        listen = http.get("/proxies/bench").json()["listen"]
        host, port = listen.rsplit(":", 1)
        toxic = {"type": "latency", "attributes": {"latency": LATENCY_MS}}
        http.post("/proxies/bench/toxics", json=toxic).raise_for_status()
        try:
            with busy_core():
                argv = [sys.executable, "-c", CLIENT, host, port, str(round_trips), str(LATENCY_MS)]
                output = subprocess.run(argv, capture_output=True, check=True, text=True).stdout
            return [float(error) for error in json.loads(output)]
        finally:
            http.delete("/proxies/bench")


def measure(
    name: str, start: Callable[[], str], stop: Callable[[], None], upstream: str, round_trips: int
) -> dict[str, float]:
    url = start()
    try:
        errors = round_trip_errors(url, upstream, round_trips)
    finally:
        stop()
    errors.sort()
    return {
        "median": statistics.median(errors),
        "p90": errors[int(len(errors) * 0.9) - 1],
        "worst": errors[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=60)
    args = parser.parse_args()
    echo, upstream = echo_server()
    thread = ServerThread(fast=True)
    supervisor = Supervisor()
    process = embedded_backend(seed=1, supervisor=supervisor)
    results = {
        "thread": measure("thread", thread.start, thread.stop, upstream, args.round_trips),
        "subprocess": measure(
            "subprocess", process.start, process.stop, upstream, args.round_trips
        ),
    }
    echo.kill()
    supervisor.close()
    print(
        f"latency toxic {LATENCY_MS} ms, {args.round_trips} round trips of 64 bytes timed by "
        "a client process; the test process keeps one core busy with a Python loop"
    )
    print(f"{'backend':<12}{'median ms':>12}{'p90 ms':>10}{'worst ms':>10}")
    for name, stats in results.items():
        print(f"{name:<12}{stats['median']:>12.2f}{stats['p90']:>10.2f}{stats['worst']:>10.2f}")
    ratio = results["thread"]["median"] / max(results["subprocess"]["median"], 1e-6)
    print(f"median error thread/subprocess: {ratio:.1f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
