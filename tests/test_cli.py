"""The ``pytest-chaos`` command as a user meets it first: bare, ``--version``, ``--help``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version

import pytest


def command() -> list[str]:
    """The installed console script, or the module where the script is not on PATH."""
    script = shutil.which("pytest-chaos")
    return [script] if script else [sys.executable, "-m", "pytest_chaos.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command(), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args", [(), ("--help",)])
def test_bare_or_with_help_it_prints_its_help(args: tuple[str, ...]) -> None:
    done = run(*args)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: pytest-chaos")
    for command_name in ("proxy", "report", "gameday"):
        assert command_name in done.stdout


def test_version_is_the_installed_distributions() -> None:
    done = run("--version")
    assert (done.returncode, done.stdout) == (0, f"pytest-chaos {version('pytest-chaos')}\n")


def test_an_unknown_command_is_a_usage_error_naming_it() -> None:
    done = run("explode")
    assert done.returncode == 2
    assert "'explode'" in done.stderr
