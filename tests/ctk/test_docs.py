"""The examples of docs/chaostoolkit.md are real: the experiment file, the test that runs
it with ``chaos.run_file``, and the same file collected as a test through the page's ini
and conftest.py."""

from __future__ import annotations

import json
import re

import pytest

from ..doc_examples import complete_examples
from ..servers import ROOT, isolate_chaos_env

PAGE = (ROOT / "docs" / "chaostoolkit.md").read_text()
[EXAMPLE] = complete_examples("chaostoolkit.md")
[EXPERIMENT] = re.findall(r"```yaml\n(# experiments/shop\.yaml\n.*?)```", PAGE, re.S)
[INI] = re.findall(r"```ini\n(.*?)```", PAGE, re.S)
[CONFTEST] = re.findall(r"```python\n(# conftest\.py\n.*?)```", PAGE, re.S)


@pytest.fixture
def lab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    isolate_chaos_env(monkeypatch)
    pytester.mkdir("experiments")
    (pytester.path / "experiments" / "shop.yaml").write_text(EXPERIMENT)
    return pytester


def test_the_example_runs_the_file_against_the_sessions_proxy(lab: pytest.Pytester) -> None:
    lab.makepyfile(test_shop=EXAMPLE)
    result = lab.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-journal-dir", "j")
    result.assert_outcomes(passed=1)
    [path] = (lab.path / "j").glob("*.json")
    journal = json.loads(path.read_text())
    # the latency went on the test's proxy "stock", and came off in the rollback
    assert [run["status"] for run in journal["run"]] == ["succeeded"]
    assert [run["status"] for run in journal["rollbacks"]] == ["succeeded"]


def test_the_file_is_collected_as_a_test(lab: pytest.Pytester) -> None:
    """The page's ini and conftest.py (with the example's fixtures beside it)."""
    lab.makefile(".ini", pytest=INI)
    lab.makeconftest(CONFTEST + "\n\n" + EXAMPLE)
    result = lab.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["PASSED experiments/shop.yaml::The shop answers while its stock service is slow"]
    )
