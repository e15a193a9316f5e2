"""The README's quick start is real: it shows examples/quickstart/test_quickstart.py as it
is, and that file runs and passes. (The README's other Python blocks are run by
tests/test_docs_site.py, which audits README.md like a page of the docs.)"""

from __future__ import annotations

import re

import pytest

from .servers import ROOT

QUICKSTART = ROOT / "examples" / "quickstart" / "test_quickstart.py"


def quick_start_test_file() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_quick_start_shows_the_example_as_it_is() -> None:
    assert quick_start_test_file() == QUICKSTART.read_text()


def test_quick_start_runs_a_real_chaos_experiment(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_quickstart=QUICKSTART.read_text())
    result = pytester.runpytest_subprocess("test_quickstart.py", "--chaos-report", "report")
    result.stdout.fnmatch_lines(
        ["chaos: seed=* toxiproxy=embedded", "resilience score 100/100", "chaos report: *"]
    )
    result.assert_outcomes(passed=2)
    assert (pytester.path / "report" / "report.html").is_file()
