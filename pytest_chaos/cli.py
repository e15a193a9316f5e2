"""The ``pytest-chaos`` command: serve the drop-in proxy, re-render a report, and run or
schedule game days.

pytest-chaos proxy [-host HOST] [-port PORT] [-config FILE] ...
pytest-chaos report DIR
pytest-chaos gameday run PLAN.toml [--dry-run] [--out DIR]
pytest-chaos gameday schedule PLAN.toml --print cron|github
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    from pytest_chaos.core.version import VERSION
    from pytest_chaos.gameday import command as gameday_command
    from pytest_chaos.proxy import command as proxy_command
    from pytest_chaos.report import command as report_command

    top = argparse.ArgumentParser(
        prog="pytest-chaos",
        description="The drop-in proxy, chaos reports and game days of pytest-chaos.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    proxy_command.add_parser(commands)
    report_command.add_parser(commands)
    gameday_command.add_parser(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (0 done, 1 failed, 2 bad usage). With no arguments,
    print the help."""
    top = parser()
    if not (sys.argv[1:] if argv is None else argv):
        top.print_help()
        return 0
    args = top.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
