"""The examples of docs/services.md are real: each complete test file runs and passes."""

from __future__ import annotations

import pytest

from ..doc_examples import complete_examples, run_example
from .helpers import require_redis

pytestmark = pytest.mark.usefixtures("isolated_env")

EXAMPLES = complete_examples("services.md")


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_the_example_runs(pytester: pytest.Pytester, number: int) -> None:
    example = EXAMPLES[number]
    if "redis-server" in example:
        require_redis()
    run_example(pytester, example, number)
