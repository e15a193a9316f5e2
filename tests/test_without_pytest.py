"""The standalone commands run where pytest cannot be imported: the drop-in proxy server
(``python -m pytest_chaos.proxy`` and ``pytest-chaos proxy``) and ``pytest-chaos report``.

Each runs in a child Python whose ``sys.modules`` maps pytest, _pytest and pluggy to None,
so any import of them raises ImportError there; the child also reports whether one was
tried, so a command that caught the ImportError would still fail the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from pytest_chaos.report import summary
from pytest_chaos.report.results import ChaosResult
from pytest_chaos.report.score import Gates, Score

#: Run before the command: pytest is unimportable, and an attempt is remembered and told.
BLOCK_PYTEST = """
import atexit, builtins, runpy, sys
BLOCKED = ("pytest", "_pytest", "pluggy")
for name in BLOCKED:
    sys.modules[name] = None
tried = []
real_import = builtins.__import__
def watching_import(name, *args, **kwargs):
    if name.split(".")[0] in BLOCKED:
        tried.append(name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = watching_import
atexit.register(lambda: tried and sys.stderr.write(f"IMPORTED {tried}\\n"))
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def without_pytest(module: str, *args: str) -> list[str]:
    return [sys.executable, "-c", BLOCK_PYTEST, module, *args]


def test_the_block_works() -> None:
    """The child's block does make pytest unimportable (else the tests below prove nothing)."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_PYTEST, "pytest", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ImportError" in done.stderr or "ModuleNotFoundError" in done.stderr


def serve_once(command: list[str]) -> None:
    """Start the server on a free port, ask it its version, stop it with SIGTERM."""
    server = subprocess.Popen(
        [*command, "-host", "127.0.0.1", "-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "listening on http://" in line, line + (
            server.stderr.read() if server.stderr else ""
        )
        url = line.rsplit(" ", 1)[1].strip()
        assert httpx.get(url + "/version", timeout=30).json() == {"version": "2.12.0"}
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, errors
    assert "IMPORTED" not in errors


def test_the_proxy_module_serves_without_pytest() -> None:
    serve_once(without_pytest("pytest_chaos.proxy"))


def test_the_proxy_command_serves_without_pytest() -> None:
    serve_once(without_pytest("pytest_chaos.cli", "proxy"))


def test_the_report_command_renders_without_pytest(tmp_path: Path) -> None:
    result = ChaosResult(nodeid="test_shop.py::test_checkout", verdict="passed", weight=3, seed=7)
    summary.write(tmp_path, Score.of([result]), Gates(), seed=7, dry_run=False)
    (tmp_path / "report.html").unlink()
    done = subprocess.run(
        without_pytest("pytest_chaos.cli", "report", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.strip()) == (0, str(tmp_path / "report.html")), done.stderr
    assert "IMPORTED" not in done.stderr
    assert "test_checkout" in (tmp_path / "report.html").read_text(encoding="utf-8")
