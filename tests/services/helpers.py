"""Helpers for the service tests: the demo app, processes read from /proc, a RESP client."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from pytest_chaos._net.processes import MARKER, state

APP = str(Path(__file__).with_name("app.py"))


def app(*options: str) -> list[str]:
    """The demo HTTP app's command line, on ``{port}``."""
    return [sys.executable, APP, "--port", "{port}", *options]


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    return state(pid) in (None, "Z")


def children_in_log(text: str) -> list[int]:
    """The pids of the children the app reported (``child PID`` lines)."""
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("child ")]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def marked_processes() -> list[tuple[int, str]]:
    """Every live process that carries the plugin's marker, with the marker's value."""
    found = []
    needle = f"{MARKER}=".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or gone(int(entry)):
            continue
        try:
            environ = Path("/proc", entry, "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                found.append((int(entry), item[len(needle) :].decode()))
    return found


def redis_command(address: str, *args: str, timeout: float = 5.0) -> str | None:
    """Send one command to Redis in RESP and return its simple answer (None for nil)."""
    host, port = address.rsplit(":", 1)
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload.encode())
        with sock.makefile("rb") as answer:
            reply = answer.readline().decode().rstrip("\r\n")
            if reply.startswith("$-1"):
                return None
            if reply.startswith("$"):
                return answer.read(int(reply[1:]) + 2).decode()[:-2]
            return reply[1:]


def owned_by(pid: int) -> list[tuple[int, str]]:
    """The live marked processes that the test process ``pid`` started."""
    return [
        (found, value) for found, value in marked_processes() if value.split(":")[0] == str(pid)
    ]


def require_redis() -> str:
    """The path of ``redis-server``, or skip (fail, where CI demands it) saying how to get it."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not on PATH (Debian: apt-get install redis-server)"
        if os.environ.get("PYTEST_CHAOS_REQUIRE_REDIS") == "1":
            pytest.fail(message + "; PYTEST_CHAOS_REQUIRE_REDIS=1 makes that a failure")
        pytest.skip(message)
    return found
