"""``pytest-chaos proxy``: the drop-in Toxiproxy server of ``python -m pytest_chaos.proxy``,
with the same options, under the package's command."""

from __future__ import annotations

import argparse

PROG = "pytest-chaos proxy"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``proxy`` command to the ``pytest-chaos`` parser's ``subparsers``; its
    arguments go, untouched, to the server's own parser."""
    command = subparsers.add_parser(
        "proxy",
        help="run the drop-in Toxiproxy server (as python -m pytest_chaos.proxy)",
        description="A Toxiproxy-compatible proxy server; `pytest-chaos proxy --help` "
        "lists its options.",
        add_help=False,
        prefix_chars="\0",
    )
    command.add_argument("arguments", nargs=argparse.REMAINDER, help="the server's options")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pytest_chaos.proxy.__main__ import main

    return main(args.arguments, prog=PROG)
