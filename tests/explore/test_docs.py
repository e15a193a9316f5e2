"""docs/explore.md is real: its complete examples pass as they are, and the first one,
explored with the page's command, gives the matrix the page shows."""

from __future__ import annotations

import re
from pathlib import Path

from ..doc_examples import complete_examples, examples_test
from ..servers import ROOT
from .sessions import run_pytest

PAGE = ROOT / "docs" / "explore.md"
test_the_example_runs = examples_test("explore.md")


def shown_matrix(text: str) -> list[str]:
    """The matrix lines of a terminal's ``chaos explore`` section: each test, and its
    dependencies' lines."""
    section = text.split("= chaos explore =", 1)[1].split("broken and hung runs", 1)[0]
    return [line.rstrip() for line in section.splitlines()[1:] if line.strip()]


def test_the_first_exploration_gives_the_matrix_shown(tmp_path: Path) -> None:
    page = PAGE.read_text()
    (tmp_path / "test_greeting.py").write_text(complete_examples("explore.md")[0])
    command = re.search(r"```sh\n(pytest --chaos-explore .*test_greeting\.py)\n```", page)
    assert command is not None
    session = run_pytest(tmp_path, *command.group(1).split()[1:])
    shown = re.search(r"```text\n(chaos explore: baseline.*?)```", page, re.S)
    assert shown is not None
    assert shown_matrix(session.output) == shown_matrix(shown.group(1)), session.output[-4000:]
    assert session.returncode == 1
