"""Live progress of long experiments: each phase as it begins, on a line of its own, so a
minute-long experiment does not look hung. Short ones (and xdist workers, and ``-q``)
stay quiet."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pytest_chaos.core.redaction import redact_text

#: Experiments planned to last at least this long show their phases.
LONG_S = 5.0


def reporter(item: pytest.Item, title: str, planned_s: float) -> Callable[[str], None] | None:
    """A phase listener for one experiment of ``item``, or None when it stays quiet."""
    config = item.config
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    quiet = config.get_verbosity() < 0 or hasattr(config, "workerinput")
    if planned_s < LONG_S or terminal is None or capture is None or quiet:
        return None
    started = time.monotonic()

    def phase(name: str) -> None:
        elapsed = time.monotonic() - started
        with capture.global_and_fixture_disabled():
            terminal.ensure_newline()
            line = f"  chaos: {title}: {name} (t={elapsed:.1f} s)"
            terminal.write_line(redact_text(line))

    return phase
