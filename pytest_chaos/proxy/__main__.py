"""``python -m pytest_chaos.proxy``: a drop-in ``toxiproxy-server``.

Takes Toxiproxy's flags in both spellings (``-port 8474`` as Go's flag package writes them,
``--port 8474`` as Python users expect), creates the proxies of ``--config`` before the API
answers, logs proxy and toxic events to stderr, and on SIGINT or SIGTERM closes the API,
every listener and every connection, then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_chaos._net.errors import HttpError
from pytest_chaos._net.loops import run, url_for
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.core.version import VERSION as __version__
from pytest_chaos.proxy.api import MAX_CONNECTIONS, TOXIPROXY_VERSION, ApiServer
from pytest_chaos.proxy.engine import Engine
from pytest_chaos.proxy.errors import ToxiproxyError

log = logging.getLogger("pytest_chaos.proxy")

#: Exit status for a bad command line or config file, as argparse uses.
EXIT_USAGE = 2
#: Exit status when the API cannot listen.
EXIT_FAILURE = 1
LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
}


class ConfigError(ChaosError):
    """The ``--config`` file cannot be read or applied; the message names file and problem."""


def build_parser(prog: str = "python -m pytest_chaos.proxy") -> argparse.ArgumentParser:
    """Toxiproxy's options, each under its Go spelling (``-port``) and ``--port``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A Toxiproxy-compatible proxy server (the Toxiproxy 2.12 HTTP API).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--host", "-host", default="127.0.0.1", help="address the API listens on (127.0.0.1)"
    )
    parser.add_argument("--port", "-port", type=_port, default=8474, help="API port (8474)")
    parser.add_argument(
        "--config",
        "-config",
        type=Path,
        help="JSON file with a list of proxies (a POST /populate body) to create at start-up",
    )
    parser.add_argument(
        "--seed", "-seed", type=int, help="seed for every random choice (default: random)"
    )
    parser.add_argument(
        "--log-level",
        "-log-level",
        type=str.lower,
        choices=sorted(LOG_LEVELS),
        default=os.environ.get("LOG_LEVEL", "info").lower(),
        metavar="LEVEL",
        help="debug, info, warn or error (default: $LOG_LEVEL or info)",
    )
    parser.add_argument(
        "--max-connections",
        type=_positive,
        default=MAX_CONNECTIONS,
        metavar="N",
        help=f"API connections served at once; more are answered 503 ({MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--no-uvloop",
        action="store_true",
        help="use asyncio's event loop even if uvloop is installed",
    )
    for flag in ("proxy-metrics", "runtime-metrics"):
        parser.add_argument(
            f"--{flag}",
            f"-{flag}",
            action="store_true",
            help="accepted for compatibility; /metrics always serves the proxy byte counters",
        )
    parser.add_argument(
        "--version",
        "-version",
        action="version",
        version=f"pytest-chaos {__version__} (Toxiproxy API {TOXIPROXY_VERSION})",
    )
    return parser


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: expected 1 or more")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected 0 to 65535")
    return int(text)


_SHORT_LEVELS = {"DEBUG": "DBG", "INFO": "INF", "WARNING": "WRN", "ERROR": "ERR", "CRITICAL": "FTL"}


class _UTCFormatter(logging.Formatter):
    """``2026-01-02T15:04:05Z INF message``, the shape of Toxiproxy's console log."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        level = _SHORT_LEVELS.get(record.levelname, record.levelname[:3])
        line = f"{self.formatTime(record)} {level} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str) -> None:
    """Log the ``pytest_chaos.proxy`` loggers to stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter())
    logger = logging.getLogger("pytest_chaos.proxy")
    logger.addHandler(handler)
    logger.setLevel(LOG_LEVELS[level])
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(handler)


def load_config(path: Path) -> list[Any]:
    """The proxies of a config file, checked to be a JSON array, or a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    try:
        specs = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"config file {path} is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}"
        ) from None
    if not isinstance(specs, list):
        raise ConfigError(
            f"config file {path} must hold a JSON array of proxies, got {type(specs).__name__}"
        )
    return specs


async def serve(args: argparse.Namespace, specs: list[Any] | None) -> int:
    """Populate the engine, serve the API until SIGINT/SIGTERM, then close everything."""
    engine = Engine(seed=args.seed)
    api = ApiServer(engine, max_connections=args.max_connections)
    try:
        if specs is not None:
            await _populate(engine, specs, args.config)
        try:
            host, port = await api.start(args.host, args.port)
        except HttpError as error:
            print(f"error: {error.message}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"pytest-chaos proxy API listening on {url_for(host, port)}", flush=True)
        await _wait_for_signal()
        log.info("shutting down")
        return 0
    finally:
        await api.close()
        await engine.close()


async def _populate(engine: Engine, specs: list[Any], path: Path) -> None:
    try:
        proxies = await engine.populate(specs)
    except ToxiproxyError as error:
        raise ConfigError(f"config file {path}: {error.message}") from None
    log.info("populated %d proxies from %s", len(proxies), path)


async def _wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM (or KeyboardInterrupt where signals cannot be hooked)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def raise_open_file_limit() -> None:
    """Allow as many sockets as the hard limit permits, as Go's runtime does for
    toxiproxy-server; a soft limit of 1024 would refuse clients under load."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None, prog: str = "python -m pytest_chaos.proxy") -> int:
    """Serve until SIGINT or SIGTERM; the exit code (0, 1 cannot listen, 2 bad usage)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    raise_open_file_limit()
    # Everything imported so far lives as long as the server: keep it out of the cyclic
    # collector's way, and collect the per-connection cycles less often.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        specs = load_config(args.config) if args.config is not None else None
        return run(serve(args, specs), fast=not args.no_uvloop)
    except ConfigError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
