"""``pytest-chaos report DIR``: render ``DIR/report.html`` again from ``DIR/summary.json``
and the journals, e.g. after downloading a CI artifact or upgrading pytest-chaos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_chaos.report.html import REPORT, SUMMARY, ReportError, write


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command to the ``pytest-chaos`` parser's ``subparsers``."""
    command = subparsers.add_parser(
        "report",
        help="render DIR/report.html again from a --chaos-report directory",
        description=f"Render DIR/{REPORT} from DIR/{SUMMARY} and the journals it lists.",
    )
    command.add_argument("directory", metavar="DIR", type=Path, help="a --chaos-report directory")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Render the report; 0 and its path on stdout, or 2 and what is wrong on stderr."""
    try:
        path = write(args.directory)
    except ReportError as error:
        print(f"pytest-chaos report: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"pytest-chaos report: cannot write into {args.directory}: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0
