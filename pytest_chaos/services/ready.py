"""Readiness: when a service that was just started may be used.

A probe (:mod:`pytest_chaos.steady.probes`) is a description made before the service exists
(``probes.tcp()`` needs a port that is chosen only when the service starts);
:func:`wait_ready` checks it against the service,
retrying through tenacity until it passes, the service exits, or the time is up. The error
then says what was tried, the last error, and the service's last log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.services.errors import ReadinessError
from pytest_chaos.steady.probes import NotReady, Probe, ProbeTarget, call

LOG_LINES_IN_ERRORS = 20


Ready = Probe | Callable[[Any], object] | Sequence[Probe | Callable[[Any], object]] | None


def probes_of(ready: Ready) -> list[Probe]:
    """The probes that ``ready=`` asks for: none, one, a callable, or a list of them."""
    given = [] if ready is None else ready if isinstance(ready, list | tuple) else [ready]
    probes = []
    for item in given:
        if isinstance(item, Probe):
            probes.append(item)
        elif callable(item):
            probes.append(call(item))
        else:
            raise TypeError(
                f"ready={ready!r}: expected a probe (probes.tcp(), probes.http(...), "
                "probes.log(...), probes.call(fn)), a callable, or a list of them"
            )
    return probes


@dataclass
class _Progress:
    attempts: int = 0
    passed: int = 0
    last_error: str = "none"


class _Exited(ChaosError):
    def __init__(self, code: int) -> None:
        self.code = code


def wait_ready(
    target: ProbeTarget,
    probes: Sequence[Probe],
    *,
    timeout: float,
    exit_code: Callable[[], int | None],
) -> None:
    """Check ``probes`` in order against ``target`` until all have passed (one that passed
    is not checked again). Raise ReadinessError when ``timeout`` seconds pass first, or as
    soon as ``exit_code()`` says the service exited."""
    import tenacity  # here: loading the plugin must stay cheap

    __tracebackhide__ = True  # pytest shows the error, not this machinery
    if not probes:
        return
    progress = _Progress()
    started = time.monotonic()

    def attempt() -> None:
        progress.attempts += 1
        code = exit_code()
        if code is not None:
            raise _Exited(code)
        while progress.passed < len(probes):
            try:
                probes[progress.passed].check(target)
            except Exception as error:
                progress.last_error = (
                    str(error)
                    if isinstance(error, NotReady)
                    else f"{type(error).__name__}: {error}"
                )
                raise NotReady(progress.last_error) from error
            progress.passed += 1

    try:
        for retry in tenacity.Retrying(
            stop=tenacity.stop_after_delay(timeout),
            wait=tenacity.wait_exponential(multiplier=0.005, max=0.2),
            retry=tenacity.retry_if_exception_type(NotReady),
            reraise=True,
        ):
            with retry:
                attempt()
    except NotReady:
        what = f"was not ready within {timeout:g} s ({progress.attempts} attempts)"
        raise _error(target, probes, progress, what) from None
    except _Exited as exited:
        elapsed = time.monotonic() - started
        what = f"exited with code {exited.code} before it was ready (after {elapsed:.1f} s)"
        raise _error(target, probes, progress, what) from None


def _error(
    target: ProbeTarget, probes: Sequence[Probe], progress: _Progress, what: str
) -> ReadinessError:
    steps = [
        probe.describe(target) + (" (passed)" if index < progress.passed else "")
        for index, probe in enumerate(probes)
    ]
    tried = "; ".join(steps)
    tail = target.logs(LOG_LINES_IN_ERRORS)
    shown = "\n".join("    " + line for line in tail.splitlines()) or "    (no output)"
    message = (
        f"service {target.name!r} {what}\n"
        f"  waited for: {tried}\n"
        f"  last error: {progress.last_error}\n"
        f"  last {LOG_LINES_IN_ERRORS} log lines of {target.name!r}:\n{shown}"
    )
    return ReadinessError(
        message, service=target.name, tried=tried, last_error=progress.last_error, log_tail=tail
    )
