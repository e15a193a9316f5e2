"""The exploring session's side of exploration: each round a child pytest session, started
with this session's options and the runs' node ids, whose events (through a pipe) replay
into this session's hooks as pytest-xdist's workers' do; and, in a child, the plugin that
sends them."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, final

import pytest

from pytest_chaos.plugin.explore_state import DEADLINE_OPTION, state

if TYPE_CHECKING:
    from pytest_chaos.explore.feed import Event, FeedWriter
    from pytest_chaos.explore.outcome import CellResult
    from pytest_chaos.explore.planner import Planned
    from pytest_chaos.explore.rounds import Exploration


def explore_tests(session: pytest.Session, tests: list[str]) -> Exploration:
    """Explore ``tests`` (node ids of this session's items), round by round."""
    from pytest_chaos.explore.rounds import explore as run_exploration
    from pytest_chaos.plugin.session import chaos_session

    settings = chaos_session(session.config).settings
    with _rounds(session) as rounds:
        return run_exploration(
            tests,
            settings.explore,
            seed=settings.seed,
            run_round=rounds.run,
            announce=rounds.announce,
            should_stop=lambda: stop_reason(session),
        )


def stop_reason(session: pytest.Session) -> str | None:
    reason = session.shouldfail or session.shouldstop
    return str(reason) if reason else None


@contextmanager
def _rounds(session: pytest.Session) -> Iterator[Rounds]:
    folder = _new_folder(session.config)
    rounds = Rounds(session, folder)
    try:
        yield rounds
    finally:
        if rounds.keep_folder:
            rounds.announce(f"the rounds' logs are kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _new_folder(config: pytest.Config) -> Path:
    """A folder for the rounds' logs and cache, in pytest's base temporary directory: what a
    killed session leaves there goes when pytest removes old base directories, as its own
    ``tmp_path`` folders do."""
    factory: pytest.TempPathFactory | None = getattr(config, "_tmp_path_factory", None)
    if factory is None:  # -p no:tmpdir
        return Path(tempfile.mkdtemp(prefix="pytest-chaos-explore-"))
    return factory.mktemp("chaos-explore")


@final
class Rounds:
    """Makes each round in a child session and replays its reports here."""

    def __init__(self, session: pytest.Session, folder: Path) -> None:
        self.session = session
        self.config = session.config
        self.folder = folder
        self.items = state(session.config).items
        self.keep_folder = False
        self._count = 0
        self._planned = 0

    def announce(self, text: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.ensure_newline()
            terminal.write_line(f"chaos explore: {text}", bold=True)

    def run(self, planned: Sequence[Planned], deadline: float | None) -> list[CellResult]:
        from pytest_chaos.explore.feed import ChildFailed, run_child
        from pytest_chaos.explore.replay import cell_nodeid

        if not planned:  # a session given no node id would run every test it finds
            return []
        self._count += 1
        self._planned += len(planned)
        self.session.testscollected = self._planned  # the terminal's progress counts runs
        args = [
            cell_nodeid(f"{self.items[p.test].path}::{p.test.partition('::')[2]}", p.cell.id)
            for p in planned
        ]
        before = len(state(self.config).results)
        log = self.folder / f"round-{self._count}.log"
        code = run_child(
            self._argv(args, deadline),
            log=log,
            on_event=self._replay,
            cwd=self.config.invocation_params.dir,
        )
        results = state(self.config).results[before:]
        if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            self.keep_folder = True
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise ChildFailed(
                f"a round's session ({log}) exited with {code} after {len(results)} of "
                f"{len(planned)} runs:\n{tail}"
            )
        return results

    def _argv(self, args: list[str], deadline: float | None) -> list[str]:
        from pytest_chaos.plugin.session import chaos_session

        seed = chaos_session(self.config).settings.seed
        extra = [DEADLINE_OPTION, repr(deadline)] if deadline is not None else []
        if self.config.pluginmanager.has_plugin("cacheprovider"):  # else -o warns of it
            extra += ["-o", f"cache_dir={self.folder / 'cache'}"]
        return [
            sys.executable,
            "-m",
            "pytest",
            *options(self.config),
            "--chaos-seed",
            str(seed),
            *extra,
            *args,
        ]

    def _replay(self, event: Event) -> None:
        """One event of the child, as this session's own (the collector keeps results)."""
        hook = self.config.hook
        kind = event["event"]
        if kind == "logstart":
            hook.pytest_runtest_logstart(nodeid=event["nodeid"], location=tuple(event["location"]))
        elif kind == "logfinish":
            hook.pytest_runtest_logfinish(nodeid=event["nodeid"], location=tuple(event["location"]))
        else:
            report = hook.pytest_report_from_serializable(config=self.config, data=event["data"])
            if kind == "collectreport":
                hook.pytest_collectreport(report=report)
            else:
                hook.pytest_runtest_logreport(report=report)


#: Options that choose tests: the rounds name their runs, so these are left out (``-k``
#: would match the faults in a run's name, ``--lf`` the rounds' own cache).
_WITH_VALUE = ("-k", "-m", "--deselect", "--ignore", "--ignore-glob")
_FLAGS = (
    *("--lf", "--last-failed", "--ff", "--failed-first", "--nf", "--new-first"),
    *("--sw", "--stepwise", "--sw-skip", "--stepwise-skip"),
)


def options(config: pytest.Config) -> list[str]:
    """This session's command line without the tests it named and the options that
    choose tests (the rounds name their runs)."""
    args = [str(arg) for arg in config.invocation_params.args]
    for positional in reversed(getattr(config.option, "file_or_dir", None) or []):
        for index in range(len(args) - 1, -1, -1):
            if args[index] == positional:
                del args[index]
                break
    kept: list[str] = []
    value_next = False
    for arg in args:
        if value_next:
            value_next = False
        elif arg in _WITH_VALUE:
            value_next = True
        elif not (arg.split("=", 1)[0] in (*_WITH_VALUE, *_FLAGS) or arg[:2] in ("-k", "-m")):
            kept.append(arg)
    return kept


# -- the report ---------------------------------------------------------------------------


@final
class FeedPlugin:
    """In a round's session: sends every event the exploring session replays."""

    NAME = "chaos-explore-feed"

    def __init__(self, config: pytest.Config, feed: FeedWriter) -> None:
        self.config = config
        self.feed = feed

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.feed.send("logstart", nodeid=nodeid, location=list(location))

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.feed.send("logfinish", nodeid=nodeid, location=list(location))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._send("report", report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._send("collectreport", report)

    def _send(self, event: str, report: pytest.TestReport | pytest.CollectReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        data.pop("node", None)  # pytest-xdist's handle of the worker; worker_id says it
        self.feed.send(event, data=data)
