"""A plan's schedule turned into a crontab line or a GitHub Actions workflow that runs the
game day unattended (its cron expression is checked by :mod:`.cron`).

Both read the expression as UTC, the only zone GitHub Actions knows; the crontab line says
so in a comment, since cron itself runs in the machine's zone.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from pytest_chaos.gameday.cron import ScheduleError, normalize
from pytest_chaos.gameday.plan import Plan

__all__ = ["ScheduleError", "crontab_line", "github_workflow", "normalize"]


def crontab_line(plan: Plan, plan_path: str | Path) -> str:
    """A crontab entry (a comment, then the line) that runs the game day at the plan's
    schedule, from the plan's folder, appending its output to ``cron.log`` in the output."""
    cron = _cron(plan)
    plan_file = Path(plan_path).resolve()
    command = " ".join(
        [
            f"mkdir -p {shlex.quote(str(plan.output))}",
            f"&& cd {shlex.quote(str(plan_file.parent))}",
            f"&& {shlex.quote(sys.executable)} -m pytest_chaos.cli gameday run",
            shlex.quote(plan_file.name),
            f">> {shlex.quote(str(plan.output / 'cron.log'))} 2>&1",
        ]
    )
    comment = (
        f"# pytest-chaos game day {plan.name!r}{_owners(plan)}: the times are UTC, "
        "so run cron in UTC (or set CRON_TZ=UTC where your cron knows it)"
    )
    # cron turns an unescaped % into a newline
    return f"{comment}\n{cron} {command.replace('%', chr(92) + '%')}\n"


def github_workflow(plan: Plan, plan_path: str | Path) -> str:
    """A GitHub Actions workflow that runs the game day on schedule (and on demand, with a
    dry-run switch), keeps its history between runs in the Actions cache, and uploads the
    report directory as an artifact. Paths are relative to the plan's repository."""
    cron = _cron(plan)
    plan_file = Path(plan_path).resolve()
    root = _repository_root(plan_file)
    plan_rel = _relative(plan_file, root, "the plan")
    output_rel = _relative(plan.output, root, "the plan's output folder")
    slug = re.sub(r"[^a-z0-9]+", "-", plan.name.lower()).strip("-") or "gameday"
    key = f"gameday-{slug}"
    run = f"pytest-chaos gameday run {shlex.quote(plan_rel)}"
    dry_run = "${{ inputs.dry_run && '--dry-run' || '' }}"
    lines = [
        f"# Game day {plan.name!r}, written by pytest-chaos gameday schedule --print github.",
        f"# Save it as .github/workflows/{key}.yml.",
        *(f"# Owner: {owner}" for owner in plan.owners),
        *(f"# Runbook: {runbook}" for runbook in plan.runbooks),
        f"name: {_q('Game day: ' + plan.name)}",
        "",
        "on:",
        "  schedule:",
        f"    - cron: {_q(cron)}  # UTC",
        "  workflow_dispatch:",
        "    inputs:",
        "      dry_run:",
        '        description: "Rehearse: run the probes, apply no fault"',
        "        type: boolean",
        "        default: false",
        "",
        "permissions:",
        "  contents: read",
        "",
        "concurrency:",
        f"  group: {_q(key)}",
        "  cancel-in-progress: false",
        "",
        "jobs:",
        "  gameday:",
        "    runs-on: ubuntu-latest",
        "    steps:",
        "      - uses: actions/checkout@v4",
        "      - uses: actions/setup-python@v5",
        "        with:",
        f"          python-version: {_q(plan.schedule.python)}",
        "      - name: Install",
        f"        run: {_q(plan.schedule.install)}",
        "      - name: Restore the history of earlier game days",
        "        uses: actions/cache/restore@v4",
        "        with:",
        f"          path: {_q(output_rel)}",
        f"          key: {_q(key + '-${{ github.run_id }}')}",
        f"          restore-keys: {_q(key + '-')}",
        "      - name: Run the game day",
        f"        run: {_q(run + ' ' + dry_run)}",
        "      - name: Keep the history for the next game day",
        "        if: always()",
        "        uses: actions/cache/save@v4",
        "        with:",
        f"          path: {_q(output_rel)}",
        f"          key: {_q(key + '-${{ github.run_id }}')}",
        "      - name: Upload the game-day report",
        "        if: always()",
        "        uses: actions/upload-artifact@v4",
        "        with:",
        f"          name: {_q(key)}",
        f"          path: {_q(output_rel)}",
    ]
    return "\n".join(lines) + "\n"


def _cron(plan: Plan) -> str:
    if plan.schedule.cron is None:
        raise ScheduleError(
            f'{plan.path}: no [schedule] cron; add one, such as cron = "0 9 * * 1" '
            "(09:00 UTC on Mondays)"
        )
    return plan.schedule.cron


def _owners(plan: Plan) -> str:
    return f" (owners: {', '.join(plan.owners)})" if plan.owners else ""


def _repository_root(path: Path) -> Path:
    """The nearest folder above ``path`` holding ``.git``: where a checkout starts."""
    for folder in path.parents:
        if (folder / ".git").exists():
            return folder
    raise ScheduleError(
        f"{path}: not inside a git repository; a GitHub workflow runs the plan from a "
        "checkout, so keep the plan in the repository"
    )


def _relative(path: Path, root: Path, what: str) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        raise ScheduleError(
            f"{what} {path} is outside the repository {root}; a workflow only sees the checkout"
        ) from None


def _q(text: str) -> str:
    """``text`` as a YAML scalar: a JSON string is a valid double-quoted YAML string."""
    return json.dumps(text)
