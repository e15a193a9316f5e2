"""The README's quick start is real: it shows examples/quickstart/test_quickstart.py as it
is, and that file runs and passes. (The README's other Python blocks are run by
tests/test_docs_site.py, which audits README.md like a page of the docs.)"""

from __future__ import annotations

import fcntl
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .docs.support import FIXED_PORTS_LOCK
from .servers import ROOT

QUICKSTART = ROOT / "examples" / "quickstart" / "test_quickstart.py"


def quick_start_test_file() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_quick_start_shows_the_example_as_it_is() -> None:
    assert quick_start_test_file() == QUICKSTART.read_text()


def test_quick_start_runs_a_real_chaos_experiment(pytester: pytest.Pytester) -> None:
    """The quick start's command in a git work tree with the repository's .gitignore:
    it passes, writes its report, and leaves nothing for ``git status`` to show."""
    pytester.makepyfile(test_quickstart=QUICKSTART.read_text())
    (pytester.path / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    git = ["git", "-C", str(pytester.path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    result = pytester.runpytest_subprocess("test_quickstart.py", "--chaos-report", "chaos-report")
    result.stdout.fnmatch_lines(
        ["chaos: seed=* toxiproxy=embedded", "resilience score 100/100", "chaos report: *"]
    )
    result.assert_outcomes(passed=2)
    assert (pytester.path / "chaos-report" / "report.html").is_file()
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    )
    pytesters_own = {"?? stdout", "?? stderr", "?? runpytest-current"}
    left = [line for line in status.stdout.splitlines() if line not in pytesters_own]
    assert left == ["A  .gitignore", "A  test_quickstart.py"]


def test_exploring_the_quick_start_finds_the_status_it_never_checks(
    pytester: pytest.Pytester,
) -> None:
    """What the README says ``--chaos-explore`` finds in the quick start (its first test
    alone, which meets ``names`` over HTTP): ``greeter`` greets with the body of an HTTP
    500, 503 or 429 from ``names``."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "--chaos-explore` finds a bug there that neither test looks for" in readme
    pytester.makepyfile(test_quickstart=QUICKSTART.read_text())
    result = pytester.runpytest_subprocess(
        "test_quickstart.py::test_falls_back_when_the_dependency_is_slow", "--chaos-explore"
    )
    lines = result.stdout.lines
    for status in (500, 503, 429):
        cell = f"[explore:link:names:http-{status}]"
        at = next(i for i, line in enumerate(lines) if "BROKE" in line and cell in line)
        assert re.search(rf"assert 'hello, .*HTTP {status}.*' == 'hello, Ada'", lines[at + 1])


def drop_in_shell_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Without pytest: a drop-in Toxiproxy server", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_drop_in_servers_shell_block_runs_as_written(tmp_path: Path) -> None:
    """The README's shell block pasted whole into bash: the server starts on 8474, each
    curl prints the object it created on a line of its own. (Fixed ports: one such test
    at a time on the machine, as for the docs' fragments.)"""
    block = drop_in_shell_block().replace(".venv/bin/python", sys.executable)
    script = block + 'kill "$!"; wait "$!"\n'  # $!: the server
    with FIXED_PORTS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for port in (8474, 26379):
                socket.create_server(("127.0.0.1", port)).close()  # free, or fail here
            done = subprocess.run(
                ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    printed = [line for line in done.stdout.splitlines() if not line.startswith("pytest-chaos")]
    proxy, toxic = (json.loads(line) for line in printed)  # the server's banner aside
    assert done.stdout.endswith("}\n")
    assert (proxy["name"], proxy["listen"], proxy["enabled"]) == ("redis", "127.0.0.1:26379", True)
    assert (toxic["type"], toxic["attributes"]) == ("latency", {"latency": 300, "jitter": 0})
