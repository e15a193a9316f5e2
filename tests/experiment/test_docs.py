"""The examples of docs/experiments.md are real: each complete test file runs and passes,
and the failure the page shows is the one the same experiment gives a shop without its
timeout."""

from __future__ import annotations

import re
from fnmatch import fnmatch

import pytest

from ..doc_examples import complete_examples, examples_test
from ..servers import ROOT, isolate_chaos_env

EXAMPLES = complete_examples("experiments.md")
test_the_example_runs = examples_test("experiments.md")


def test_the_page_shows_the_failure_of_a_shop_without_a_timeout(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_chaos_env(monkeypatch)
    fragile = EXAMPLES[0].replace("httpx.Client(timeout=0.2)", "httpx.Client(timeout=None)")
    assert fragile != EXAMPLES[0]
    pytester.makepyfile(test_shop=fragile)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    page = (ROOT / "docs" / "experiments.md").read_text()
    shown = re.search(r"fails this experiment; the failure reads:\n\n```\n(.*?)```", page, re.S)
    assert shown is not None
    # The page's numbers are one run's; the shape of every line is what must hold. Which
    # probe is seen deviating first, and so how the deviations read, is the scheduler's
    # choice: at least one of the page's deviation lines must be there.
    deviations = []
    for line in shown.group(1).splitlines():
        pattern = "*" + re.sub(r"\d+(\.\d+)?", "*", line.strip()).replace("'", "*") + "*"
        if line.strip().startswith("during the method at"):
            deviations.append(pattern)
        else:
            result.stdout.fnmatch_lines([pattern])
    output = result.stdout.lines
    assert deviations and any(fnmatch(out, pattern) for out in output for pattern in deviations)
