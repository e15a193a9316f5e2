"""``pytest-chaos gameday``: ``run`` a plan's game day, or ``schedule`` it by printing a
crontab line or a GitHub Actions workflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_chaos.gameday import plan as plan_module
from pytest_chaos.gameday.history import FILE as HISTORY
from pytest_chaos.gameday.run import GameDayError
from pytest_chaos.gameday.run import run as run_gameday
from pytest_chaos.gameday.schedule import ScheduleError, crontab_line, github_workflow

PROG = "pytest-chaos gameday"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``gameday`` command, with ``run`` and ``schedule``, to ``subparsers``."""
    gameday = subparsers.add_parser(
        "gameday",
        help="run a game-day plan, or print its schedule for cron or GitHub Actions",
        description="Game days: a plan's chaos suite repeated with fresh seeds, halt "
        "conditions, and a report kept beside the history of earlier runs.",
    )
    actions = gameday.add_subparsers(dest="gameday_command", required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run the game day and write its report",
        description=f"Run the plan's repetitions, stop everything on a halt, and write the "
        f"game-day report (gameday.html, gameday.md) beside {HISTORY}. Exit 0 when "
        "everything held, 1 when something broke or it halted, 2 for a bad plan.",
    )
    run.add_argument("plan", metavar="PLAN", type=Path, help="the plan (TOML)")
    run.add_argument(
        "--dry-run", action="store_true", help="rehearse: probes run, no fault is applied"
    )
    run.add_argument(
        "--out", metavar="DIR", type=Path, help="the report folder (default: the plan's output)"
    )
    run.set_defaults(run=_run)
    schedule = actions.add_parser(
        "schedule",
        help="print the plan's schedule as a crontab line or a GitHub Actions workflow",
        description="Turn the plan's [schedule] cron (UTC) into a crontab line or a "
        "GitHub Actions workflow, printed on stdout.",
    )
    schedule.add_argument("plan", metavar="PLAN", type=Path, help="the plan (TOML)")
    schedule.add_argument(
        "--print", dest="form", required=True, choices=("cron", "github"), help="what to print"
    )
    schedule.set_defaults(run=_schedule)


def _run(args: argparse.Namespace) -> int:
    try:
        plan = plan_module.load(args.plan)
        day = run_gameday(plan, dry_run=args.dry_run, output=args.out)
    except (plan_module.PlanError, GameDayError) as error:
        print(f"{PROG} run: {error}", file=sys.stderr)
        return 2
    return day.exit_code


def _schedule(args: argparse.Namespace) -> int:
    try:
        plan = plan_module.load(args.plan)
        if args.form == "cron":
            text = crontab_line(plan, args.plan)
        else:
            text = github_workflow(plan, args.plan)
    except (plan_module.PlanError, ScheduleError) as error:
        print(f"{PROG} schedule: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
