"""The corpus's answer key holds: each planted bug's documented run reveals it, ending as
documented, and each handled dependency's run holds or does what was declared. (The whole
exploration of the corpus, which must find every bug and blame nothing handled, is the
benchmark's: ``benchmarks/explore.py``.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ..servers import ROOT
from .sessions import run_pytest

CORPUS = ROOT / "examples" / "explore-corpus"
sys.path.insert(0, str(CORPUS))
from corpus.manifest import BUGS, HANDLED, check  # noqa: E402

CELLS = [f"{bug.test}[{bug.reveals}]" for bug in BUGS] + [
    f"{test}[{cell}]" for test, _, cell in HANDLED
]


def test_each_bug_shows_in_its_run_and_each_handled_dependency_holds(tmp_path: Path) -> None:
    session = run_pytest(
        CORPUS,
        "--chaos-explore",
        "--chaos-seed",
        "1",
        "--chaos-explore-timeout",
        "6",
        "--chaos-explore-latency",
        "600",
        "-n",
        "2",
        *CELLS,
        report=tmp_path / "report",
    )
    outcomes = {run["nodeid"].rpartition("::")[2]: run["outcome"] for run in session.runs}
    for bug in BUGS:
        name = bug.test.rpartition("::")[2]
        assert outcomes[f"{name}[{bug.reveals}]"] == bug.outcome, (bug, session.output[-3000:])
    for test, dependency, cell in HANDLED:
        name = test.rpartition("::")[2]
        assert outcomes[f"{name}[{cell}]"] in ("held", "expected"), (
            dependency,
            session.output[-3000:],
        )
    verdict = check(session.runs)
    assert verdict.exact and len(verdict.found) == len(BUGS)


@pytest.mark.parametrize(
    ("runs", "missed", "unexplained"),
    [
        ([], 7, 0),
        (
            [
                {
                    "test": f"x/{BUGS[6].test}",
                    "nodeid": "n",
                    "outcome": "broke",
                    "faults": [{"kind": "link", "dependency": "primary"}],
                }
            ],
            7,
            1,
        ),
        (
            [
                {
                    "test": f"x/{BUGS[6].test}",
                    "nodeid": "n",
                    "outcome": "broke",
                    "faults": [
                        {"kind": "link", "dependency": "primary"},
                        {"kind": "process", "dependency": "replica"},
                    ],
                }
            ],
            6,
            0,
        ),
        (
            [
                {
                    "test": f"x/{BUGS[1].test}",
                    "nodeid": "n",
                    "outcome": "hung",
                    "faults": [{"kind": "http", "dependency": "POST payments/charges"}],
                }
            ],
            6,
            0,
        ),
    ],
)
def test_the_answer_key_tells_found_bugs_from_blamed_dependencies(
    runs: list[dict[str, object]], missed: int, unexplained: int
) -> None:
    verdict = check(runs)
    assert (len(verdict.missed), len(verdict.unexplained)) == (missed, unexplained)
