"""The examples of a docs page are real: its Python blocks that are whole test files run
and pass."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .servers import ROOT, isolate_chaos_env


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


def examples_test(
    page: str, before: Callable[[str], None] | None = None
) -> Callable[[pytest.Pytester, pytest.MonkeyPatch, int], None]:
    """A test, one case per complete example of ``docs/<page>``, that runs the example in
    an environment free of the outer session's chaos settings; ``before(example)`` may
    skip or prepare a case."""
    examples = complete_examples(page)

    @pytest.mark.parametrize("number", range(len(examples)))
    def test_the_example_runs(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, number: int
    ) -> None:
        isolate_chaos_env(monkeypatch)
        if before is not None:
            before(examples[number])
        run_example(pytester, examples[number], number)

    return test_the_example_runs
