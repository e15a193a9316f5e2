"""Chaos Toolkit experiment files collected as tests: each file that ``--chaos-experiment-files``
(ini ``chaos_experiment_files``) matches is one test, named by the experiment's title and
marked as a chaos test with its tags, that runs the file with ``chaos.run_file`` and the
options the ``chaos_experiment_options`` fixture gives."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

import pytest

from pytest_chaos.ctk.files import SUFFIXES

if TYPE_CHECKING:
    from pytest_chaos.plugin.chaos import Chaos


def matches(path: Path, patterns: Iterable[str], rootpath: Path) -> bool:
    """Whether ``path`` is an experiment file one of ``patterns`` names: a glob without
    ``/`` matches the file's name, one with ``/`` its path from ``rootpath``."""
    if path.suffix not in SUFFIXES:
        return False
    try:
        relative = path.relative_to(rootpath).as_posix()
    except ValueError:
        relative = path.as_posix()
    return any(
        fnmatch.fnmatch(relative if "/" in pattern else path.name, pattern) for pattern in patterns
    )


@final
class ExperimentFileCollector(pytest.File):
    """One experiment file: one test. The file is only read here (for its title and tags);
    chaostoolkit-lib validates it when the test runs."""

    def collect(self) -> Iterator[pytest.Item]:
        from chaoslib.loader import parse_experiment_from_file

        document = parse_experiment_from_file(str(self.path))
        if not isinstance(document, Mapping):
            raise pytest.UsageError(f"{self.path}: not a Chaos Toolkit experiment")
        title = str(document.get("title") or self.path.stem)
        item = pytest.Function.from_parent(self, name=title, callobj=run_experiment_file)
        hypothesis = (document.get("steady-state-hypothesis") or {}).get("title")
        tags = [tag for tag in document.get("tags") or [] if isinstance(tag, str) and tag]
        item.add_marker(pytest.mark.chaos(hypothesis=hypothesis or title, tags=tags))
        yield item


def run_experiment_file(
    request: pytest.FixtureRequest, chaos: Chaos, chaos_experiment_options: Mapping[str, Any]
) -> None:
    """The test of a collected experiment file."""
    __tracebackhide__ = True
    chaos.run_file(request.node.path, **chaos_experiment_options)
