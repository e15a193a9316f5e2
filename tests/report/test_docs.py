"""docs/reports.md's example is a real test file that passes."""

from __future__ import annotations

from ..doc_examples import examples_test

test_the_example_runs = examples_test("reports.md")
