"""Naming a run on the command line: a test's node id with a cell's id in its
parametrization, and the one command that makes exactly that run again."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def cell_nodeid(nodeid: str, cell_id: str) -> str:
    """``path::test_x`` -> ``path::test_x[explore:...]``; a parametrized test's own ids
    come first: ``path::test_x[1]`` -> ``path::test_x[1-explore:...]``."""
    if nodeid.endswith("]") and "[" in nodeid.rpartition("::")[2]:
        return f"{nodeid[:-1]}-{cell_id}]"
    return f"{nodeid}[{cell_id}]"


def replay_command(seed: int, nodeid: str, options: Sequence[str] = ()) -> str:
    """The command that runs the cell ``nodeid`` again, alone, with the same seed and the
    explore ``options`` that change what a run does."""
    words = ["pytest", "--chaos-explore", "--chaos-seed", str(seed), *options, nodeid]
    return shlex.join(words)
