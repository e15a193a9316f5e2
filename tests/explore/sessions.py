"""Running an exploration in a pytest of its own, as a user would, and reading what it
left: its output, exit status and ``summary.json``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_chaos.plugin import settings

from ..servers import CODE_ROOT

PROJECT = Path(__file__).resolve().parent / "project"


@dataclass
class Session:
    folder: Path
    report: Path
    returncode: int
    output: str

    @property
    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.report / "summary.json").read_text())
        return data

    @property
    def runs(self) -> list[dict[str, Any]]:
        return [run for test in self.summary["explore"]["tests"] for run in test["runs"]]

    def test(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(
            test for test in self.summary["explore"]["tests"] if test["test"].endswith(name)
        )
        return found


def environment() -> dict[str, str]:
    """This one's, without chaos settings from outside, with this checkout importable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {o.env for o in settings.OPTIONS}
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CODE_ROOT), env.get("PYTHONPATH")]))
    return env


def copy_project(folder: Path) -> Path:
    shutil.copytree(PROJECT, folder, dirs_exist_ok=True)
    return folder


def run_pytest(
    folder: Path, *args: str, report: Path | None = None, timeout: float = 600
) -> Session:
    """``python -m pytest ARGS`` in ``folder``, with its report in ``report`` (default
    ``folder/report``)."""
    report = report if report is not None else folder / "report"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"]
    done = subprocess.run(
        [*command, "--chaos-report", str(report), *args],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Session(folder, report, done.returncode, done.stdout + done.stderr)
