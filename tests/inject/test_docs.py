"""The examples of docs/inject.md are real: each complete test file runs and passes, and the
example without pytest runs as a plain script."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ..doc_examples import complete_examples, run_example
from ..servers import ROOT, isolate_chaos_env

EXAMPLES = complete_examples("inject.md")


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_the_example_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, number: int
) -> None:
    isolate_chaos_env(monkeypatch)
    run_example(pytester, EXAMPLES[number], number)


def test_the_example_without_pytest_runs() -> None:
    page = (ROOT / "docs" / "inject.md").read_text()
    script = next(
        block
        for block in re.findall(r"```python\n(.*?)```", page, re.S)
        if "ChaosConfig(" in block and "def test_" not in block
    )
    script += "import asyncio\nassert asyncio.run(charge(5)) == 5\nprint(monkey.seed)\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"CHAOS_SEED": "42", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42"]
