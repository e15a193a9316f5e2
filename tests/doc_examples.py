"""The examples of a docs page are real: its Python blocks that are whole test files run
and pass."""

from __future__ import annotations

import re

import pytest

from .servers import ROOT


def complete_examples(page: str) -> list[str]:
    """The Python blocks of ``docs/<page>`` that are whole test files (they start with an
    import and define tests)."""
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return [block for block in blocks if block.startswith("import") and "\ndef test_" in block]


def run_example(pytester: pytest.Pytester, example: str, number: int) -> None:
    """Run one example as a test file in a fresh pytest process; every test must pass."""
    pytester.makepyfile(**{f"test_example_{number}": example})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    tests = len(re.findall(r"^def test_", example, re.M))
    result.assert_outcomes(passed=tests)
