"""docs/explore.md is real: its complete examples pass as they are, the first one,
explored with the page's command, gives the matrix the page shows, and so does the shop
(examples/shop) explored with its section's command."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

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


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="the shop's cache is Redis")
def test_exploring_the_shop_gives_the_matrix_shown(tmp_path: Path) -> None:
    page = PAGE.read_text().split("## Exploring the shop", 1)[1]
    command = re.search(r"```sh\n(pytest --chaos-explore .*test_shop_explore\.py)\n```", page)
    assert command is not None
    session = run_pytest(ROOT, *command.group(1).split()[1:], report=tmp_path / "report")
    shown = re.search(r"```text\n(chaos explore: baseline.*?)```", page, re.S)
    assert shown is not None
    assert shown_matrix(session.output) == shown_matrix(shown.group(1)), session.output[-4000:]
