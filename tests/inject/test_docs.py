"""The examples of docs/inject.md are real: each complete test file runs and passes, and the
example without pytest runs as a plain script."""

from __future__ import annotations

import re
import subprocess
import sys

from ..doc_examples import examples_test
from ..servers import ROOT

test_the_example_runs = examples_test("inject.md")


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
