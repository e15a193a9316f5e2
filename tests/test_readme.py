"""The README's quick start is real: its test file runs and passes as written."""

from __future__ import annotations

import re

import pytest

from .servers import ROOT


def quick_start_test_file() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_quick_start_runs_a_real_chaos_experiment(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_quickstart=quick_start_test_file())
    result = pytester.runpytest_subprocess("test_quickstart.py")
    result.stdout.fnmatch_lines(["chaos: seed=* toxiproxy=embedded"])
    result.assert_outcomes(passed=2)
