"""The examples of docs/services.md are real: each complete test file runs and passes."""

from __future__ import annotations

from ..doc_examples import examples_test
from .helpers import require_redis


def _needs(example: str) -> None:
    if "redis-server" in example:
        require_redis()


test_the_example_runs = examples_test("services.md", before=_needs)
