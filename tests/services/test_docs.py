"""The examples of docs/services.md are real: each complete test file runs and passes."""

from __future__ import annotations

import re

import pytest

from ..servers import ROOT
from .helpers import require_redis

pytestmark = pytest.mark.usefixtures("isolated_env")


def complete_examples() -> list[str]:
    """The page's Python blocks that are whole test files (they start with an import)."""
    page = (ROOT / "docs" / "services.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    return [block for block in blocks if block.startswith("import")]


@pytest.mark.parametrize("number", range(len(complete_examples())))
def test_the_example_runs(pytester: pytest.Pytester, number: int) -> None:
    example = complete_examples()[number]
    if "redis-server" in example:
        require_redis()
    pytester.makepyfile(**{f"test_example_{number}": example})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    tests = len(re.findall(r"^def test_", example, re.M))
    result.assert_outcomes(passed=tests)
