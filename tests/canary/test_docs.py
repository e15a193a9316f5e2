"""The example of docs/canary.md is real: it runs, with this folder's app.py as the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..doc_examples import complete_examples, run_example
from ..servers import isolate_chaos_env

EXAMPLES = complete_examples("canary.md")


@pytest.mark.parametrize("number", range(len(EXAMPLES)))
def test_the_example_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, number: int
) -> None:
    isolate_chaos_env(monkeypatch)
    pytester.makepyfile(app=(Path(__file__).parent / "app.py").read_text())
    run_example(pytester, EXAMPLES[number], number)
