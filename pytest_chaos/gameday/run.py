"""A game day run: the plan's suite repeated with fresh seeds, each repetition a pytest
process watched by the halt conditions, then the history extended and the report written.

A halt stops everything: the running pytest's whole process group gets SIGINT, so that
experiments roll their faults back as on Ctrl-C, then SIGTERM and SIGKILL if it does not end
within the plan's grace period, and no further repetition starts.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, final

import httpx

from pytest_chaos._net import processes
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.core.seeding import SEED_BITS, derive
from pytest_chaos.gameday import chart, history, render
from pytest_chaos.gameday.history import RepetitionRecord, RunRecord
from pytest_chaos.gameday.plan import HaltProbe, Plan
from pytest_chaos.report.layout import FORMAT, SUMMARY

#: Seconds a process group gets after SIGTERM before SIGKILL.
TERMINATE_S = 5.0
LOG = "pytest.log"


class GameDayError(ChaosError):
    """The game day could not run as planned (the suite does not start, the history is
    unreadable): nothing was judged, the plan or the setup needs fixing."""


@final
@dataclass(frozen=True)
class Repetition:
    """One repetition: its record in the history and the summary its pytest wrote."""

    record: RepetitionRecord
    summary: Mapping[str, Any] | None

    @property
    def ran_properly(self) -> bool:
        return self.record["exit_code"] in (0, 1) and self.summary is not None

    @property
    def broke(self) -> bool:
        """Whether anything went wrong: a test that did not hold, or a run that did not
        run properly."""
        if not self.ran_properly or self.record["exit_code"] != 0:
            return True
        totals = self.record["totals"] or {}
        return any(totals.get(verdict, 0) for verdict in render.BROKEN)


@final
@dataclass(frozen=True)
class GameDay:
    """A finished game day: the plan, its record, its repetitions, the whole history
    (this run last) and the reports written."""

    plan: Plan
    record: RunRecord
    repetitions: tuple[Repetition, ...]
    runs: tuple[RunRecord, ...]
    output: Path
    html: Path
    markdown: Path

    @property
    def exit_code(self) -> int:
        """0 when everything held, 1 when something broke or the game day halted."""
        return 0 if self.record["status"] == "held" else 1


def run(
    plan: Plan,
    *,
    dry_run: bool = False,
    output: Path | None = None,
    echo: Callable[[str], object] = print,
) -> GameDay:
    """Run the game day of ``plan`` and write its report into ``output`` (default: the
    plan's); raise GameDayError when the suite cannot run at all."""
    folder = (output or plan.output).resolve()
    try:
        earlier = history.load(folder)
    except history.HistoryError as error:
        raise GameDayError(str(error)) from None
    started = datetime.now(timezone.utc)
    run_id = _run_id(started, folder)
    seeds = draw_seeds(plan, len(earlier) + 1)
    watch = _Watch(plan, time.monotonic())
    mode = " (dry run: no fault is applied)" if dry_run else ""
    echo(f"game day {plan.name!r}: {plan.repetitions} repetition(s){mode}")

    repetitions: list[Repetition] = []
    halt = watch.probe_all("before the first repetition")
    deviated = 0
    for number, seed in enumerate(seeds, 1):
        if halt is not None:
            break
        echo(f"repetition {number}/{plan.repetitions}: seed {seed}")
        directory = folder / "runs" / run_id / f"repetition-{number}"
        repetition, halt = _repeat(plan, number, seed, directory, folder, dry_run, watch)
        repetitions.append(repetition)
        code = repetition.record["exit_code"]
        if number == 1 and code in (4, 5):
            raise GameDayError(_did_not_start(plan, directory / LOG, code))
        echo(f"  {render.describe_repetition(repetition.record, repetition.summary is not None)}")
        totals = repetition.record["totals"] or {}
        deviated += totals.get("deviated", 0) + totals.get("halted", 0)
        if halt is None:
            halt = _after(plan, repetition, deviated)
    if halt is not None:
        echo(f"halted: {halt}")

    record = RunRecord(
        id=run_id,
        plan=plan.name,
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        dry_run=dry_run,
        status=_status(repetitions, halt),
        score=_mean([r.record["score"] for r in repetitions]),
        halt=halt,
        report=f"gameday-{run_id}.html",
        repetitions=[r.record for r in repetitions],
    )
    runs = history.append(folder, record)
    markdown = _write_reports(plan, record, [r.summary for r in repetitions], runs, folder)
    echo(f"game day {record['status']}: {folder / record['report']}, {markdown}")
    return GameDay(
        plan, record, tuple(repetitions), tuple(runs), folder, folder / record["report"], markdown
    )


def _status(repetitions: list[Repetition], halt: str | None) -> str:
    if halt is not None:
        return "halted"
    if not repetitions or any(r.broke for r in repetitions):
        return "broke"
    return "held"


def _mean(scores: list[float | None]) -> float | None:
    """The mean of the repetitions that have a score, to one decimal; None without any."""
    known = [score for score in scores if score is not None]
    return round(sum(known) / len(known), 1) if known else None


def _write_reports(
    plan: Plan,
    record: RunRecord,
    summaries: list[Mapping[str, Any] | None],
    runs: list[RunRecord],
    folder: Path,
) -> Path:
    """Write the run's reports (and the latest ones, and the chart) into ``folder``; the
    run's Markdown report."""
    html = render.html(plan, record, summaries, runs)
    markdown = render.markdown(plan, record, summaries, runs)
    name = f"gameday-{record['id']}"
    for file, text in (
        (f"{name}.html", html),
        (f"{name}.md", markdown),
        ("gameday.html", html),
        ("gameday.md", markdown),
        (render.CHART, chart.score_chart(runs)),
    ):
        (folder / file).write_text(text, encoding="utf-8")
    return folder / f"{name}.md"


def draw_seeds(plan: Plan, run_number: int) -> list[int]:
    """The repetition seeds of the plan's ``run_number``-th game day: with the plan's
    ``seed``, the same ones every time for that run number (and new ones for the next);
    without it, random ones."""
    rng: random.Random
    if plan.seed is None:
        rng = random.SystemRandom()
    else:
        rng = random.Random(derive(plan.seed, "gameday", str(run_number)))
    return [rng.getrandbits(SEED_BITS) for _ in range(plan.repetitions)]


def pytest_args(plan: Plan, seed: int) -> list[str]:
    """pytest's arguments for a repetition with ``seed``, as a person replays it."""
    args = list(plan.suite.args)
    if plan.suite.markers is not None:
        args += ["-m", plan.suite.markers]
    args += ["--chaos-seed", str(seed)]
    if plan.targets.toxiproxy is not None:
        args += ["--chaos-toxiproxy", plan.targets.toxiproxy]
    return args


def _repeat(
    plan: Plan,
    number: int,
    seed: int,
    directory: Path,
    folder: Path,
    dry_run: bool,
    watch: _Watch,
) -> tuple[Repetition, str | None]:
    """Run one repetition to its end or its halt; the repetition and the halt's reason."""
    directory.mkdir(parents=True, exist_ok=True)
    args = pytest_args(plan, seed)
    argv = [sys.executable, "-m", "pytest", *args, "--chaos-report", str(directory)]
    if dry_run:
        argv.append("--chaos-dry-run")
    env = dict(os.environ)
    # The plan decides whether faults apply, not a variable left in the environment.
    env.pop("PYTEST_CHAOS_DRY_RUN", None)
    if plan.targets.docker_host is not None:
        env["DOCKER_HOST"] = plan.targets.docker_host
    started = time.monotonic()
    with (directory / LOG).open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=plan.suite.directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to signal as a whole
            preexec_fn=default_signals,
        )
        halt = watch.until_exit(process, number)
    summary = _summary(directory)
    replay = shlex.join(["cd", str(plan.suite.directory)]) + " && " + shlex.join(["pytest", *args])
    record = RepetitionRecord(
        number=number,
        seed=seed,
        exit_code=process.returncode,
        score=summary.get("score") if summary else None,
        totals=dict(summary["totals"])
        if summary and isinstance(summary.get("totals"), dict)
        else None,
        duration_s=round(time.monotonic() - started, 2),
        directory=directory.relative_to(folder).as_posix(),
        replay=replay,
    )
    return Repetition(record, summary), halt


class _Watch:
    """The halt conditions watched while repetitions run: the probes, each on its own
    period, and the game day's time limit."""

    def __init__(self, plan: Plan, started: float) -> None:
        self.halt = plan.halt
        self.deadline = (
            started + plan.halt.max_duration_s if plan.halt.max_duration_s is not None else None
        )
        self.due = [started] * len(plan.halt.probes)

    def probe_all(self, when: str) -> str | None:
        """Check every probe once; the first failure's account, or None."""
        for probe in self.halt.probes:
            failure = _probe(probe)
            if failure is not None:
                return f"{failure} ({when})"
        return None

    def until_exit(self, process: subprocess.Popen[bytes], number: int) -> str | None:
        """Wait for ``process``, checking the halt conditions; stop its process group at
        the first breach (or on Ctrl-C) and return why."""
        reason = None
        try:
            while process.poll() is None:
                now = time.monotonic()
                reason = self._breach(now, number)
                if reason is not None:
                    break
                wake = [*self.due, *([self.deadline] if self.deadline is not None else [])]
                timeout = min([*(moment - now for moment in wake), 0.5])
                try:
                    process.wait(max(timeout, 0.01))
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            reason = f"interrupted by the operator (Ctrl-C) during repetition {number}"
        if reason is not None:
            stop(process, self.halt.grace_s)
        return reason

    def _breach(self, now: float, number: int) -> str | None:
        if self.deadline is not None and now >= self.deadline:
            return (
                f"the game day ran longer than max_duration_s = {self.halt.max_duration_s:g} s "
                f"(during repetition {number})"
            )
        for index, probe in enumerate(self.halt.probes):
            if now < self.due[index]:
                continue
            self.due[index] = now + probe.every_s
            failure = _probe(probe)
            if failure is not None:
                return f"{failure} (during repetition {number})"
        return None


def _probe(probe: HaltProbe) -> str | None:
    """Why ``probe`` failed, or None when it answered as expected."""
    try:
        status = httpx.get(probe.url, timeout=probe.timeout_s).status_code
    except httpx.HTTPError as error:
        return f"halt probe {probe.url} failed: {type(error).__name__}: {error}"
    if status != probe.status:
        return f"halt probe {probe.url} answered {status}, expected {probe.status}"
    return None


def default_signals() -> None:
    """In the child, before it runs pytest: the signals a halt sends get their default
    handling back, so that SIGINT rolls experiments back as Ctrl-C does even when the game
    day itself ignores it (started with ``nohup ... &``, which ignores SIGINT and SIGQUIT,
    and children inherit an ignored signal)."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """Stop ``process`` and its process group: SIGINT (rollbacks run as on Ctrl-C), then
    SIGTERM after ``grace_s``, then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, TERMINATE_S)):
        _signal(process, sig)
        try:
            process.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            pass
    _signal(process, signal.SIGKILL)
    process.wait()


def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    processes.signal_all(process.pid, None, sig)


def _after(plan: Plan, repetition: Repetition, deviated: int) -> str | None:
    """The halt a finished repetition calls for: a score below ``min_score``, or
    ``max_deviated`` deviations so far; None to go on."""
    number, score = repetition.record["number"], repetition.record["score"]
    if plan.halt.min_score is not None and score is not None and score < plan.halt.min_score:
        return f"repetition {number} scored {score:g}, below min_score = {plan.halt.min_score:g}"
    if plan.halt.max_deviated is not None and deviated >= plan.halt.max_deviated:
        return (
            f"{deviated} experiment(s) deviated by repetition {number}, "
            f"max_deviated = {plan.halt.max_deviated}"
        )
    return None


def _summary(directory: Path) -> dict[str, Any] | None:
    """The summary a repetition wrote, or None when it wrote none it can be judged by."""
    try:
        data = json.loads((directory / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def _did_not_start(plan: Plan, log: Path, code: int) -> str:
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
    return (
        f"the suite did not run: pytest exited {code} ({render.EXIT_CODES[code]}) in "
        f"{plan.suite.directory}; check [suite] args and markers in {plan.path}:\n  "
        + "\n  ".join(tail)
    )


def _run_id(started: datetime, folder: Path) -> str:
    """A name for the run, its start in UTC; a suffix when one of that second exists."""
    base = started.strftime("%Y%m%dT%H%M%SZ")
    candidate, number = base, 1
    while (folder / "runs" / candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate
