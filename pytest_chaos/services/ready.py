"""Readiness: when a service that was just started may be used.

A probe is a description made before the service exists (``probes.tcp()`` needs a port that
is chosen only when the service starts); :func:`wait_ready` checks it against the service,
retrying through tenacity until it passes, the service exits, or the time is up. The error
then says what was tried, the last error, and the service's last log lines.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import ReadinessError

LOG_LINES_IN_ERRORS = 20


class Target(Protocol):
    """What a probe checks: a service handle."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def ports(self) -> Mapping[str, int]: ...
    def output_since_start(self) -> str: ...
    def logs(self, lines: int = ...) -> str: ...


class NotReady(Exception):
    """Raised by a probe whose service is not ready yet; the message says why."""


class Probe:
    """A readiness check, described before the service starts and checked against it."""

    def describe(self, target: Target) -> str:
        """What the probe tries, for error messages (``TCP connect to 127.0.0.1:6379``)."""
        raise NotImplementedError

    def check(self, target: Target) -> None:
        """Return when ``target`` is ready; raise (NotReady or any error) while it is not."""
        raise NotImplementedError

    def validate(self, target: Target) -> None:
        """Raise ValueError now if the probe can never work for ``target``."""


@dataclass(frozen=True)
class TcpProbe(Probe):
    """Ready once a TCP connection to the service's port is accepted."""

    port: str | None = None
    timeout: float = 1.0

    def validate(self, target: Target) -> None:
        port_of(target, self.port)

    def describe(self, target: Target) -> str:
        return f"TCP connect to {target.host}:{port_of(target, self.port)}"

    def check(self, target: Target) -> None:
        address = (target.host, port_of(target, self.port))
        socket.create_connection(address, timeout=self.timeout).close()


@dataclass(frozen=True)
class HttpProbe(Probe):
    """Ready once ``GET path`` answers with ``status`` (and a body that passes ``body``)."""

    path: str = "/"
    status: int | Collection[int] = 200
    body: str | Callable[[str], object] | None = None
    port: str | None = None
    timeout: float = 2.0

    def validate(self, target: Target) -> None:
        self.url(target)

    def url(self, target: Target) -> str:
        if "://" in self.path:
            return self.path
        path = self.path if self.path.startswith("/") else "/" + self.path
        return f"http://{target.host}:{port_of(target, self.port)}{path}"

    def describe(self, target: Target) -> str:
        wanted = self.status if isinstance(self.status, int) else sorted(self.status)
        text = f"HTTP GET {self.url(target)} answering {wanted}"
        if isinstance(self.body, str):
            text += f" with {self.body!r} in the body"
        elif self.body is not None:
            text += f" with a body that {_name(self.body)} accepts"
        return text

    def check(self, target: Target) -> None:
        import httpx  # here: loading the plugin must stay cheap

        response = httpx.get(self.url(target), timeout=self.timeout)
        allowed = {self.status} if isinstance(self.status, int) else set(self.status)
        if response.status_code not in allowed:
            raise NotReady(f"answered {response.status_code}: {_excerpt(response.text)}")
        if isinstance(self.body, str):
            if self.body not in response.text:
                raise NotReady(f"body without {self.body!r}: {_excerpt(response.text)}")
        elif self.body is not None and not self.body(response.text):
            raise NotReady(f"{_name(self.body)} rejected the body: {_excerpt(response.text)}")


@dataclass(frozen=True)
class LogProbe(Probe):
    """Ready once the service's output since it (last) started matches ``pattern``."""

    pattern: re.Pattern[str]

    def describe(self, target: Target) -> str:
        return f"a log line matching {self.pattern.pattern!r}"

    def check(self, target: Target) -> None:
        if not self.pattern.search(target.output_since_start()):
            raise NotReady(f"no output matches {self.pattern.pattern!r} yet")


@dataclass(frozen=True)
class CallProbe(Probe):
    """Ready once ``fn(service)`` returns something other than False without raising."""

    fn: Callable[[Any], object]
    description: str | None = None

    def describe(self, target: Target) -> str:
        return self.description or f"{_name(self.fn)}(service)"

    def check(self, target: Target) -> None:
        if self.fn(target) is False:
            raise NotReady(f"{_name(self.fn)} returned False")


def tcp(port: str | None = None, *, timeout: float = 1.0) -> TcpProbe:
    """Ready once the service accepts a TCP connection on its port (or the port named
    ``port``: ``{port:NAME}``)."""
    return TcpProbe(port, timeout)


def http(
    path: str = "/",
    *,
    status: int | Collection[int] = 200,
    body: str | Callable[[str], object] | None = None,
    port: str | None = None,
    timeout: float = 2.0,
) -> HttpProbe:
    """Ready once ``GET path`` on the service (or a full URL) answers ``status`` (a code, or
    a collection of codes); with ``body``, once the body contains that string, or once
    ``body(text)`` returns a true value."""
    return HttpProbe(path, status, body, port, timeout)


def log(pattern: str | re.Pattern[str]) -> LogProbe:
    """Ready once the service's output (since it last started) matches the regular
    expression ``pattern`` (``re.MULTILINE``: ``^`` and ``$`` match at each line)."""
    if isinstance(pattern, str):
        pattern = re.compile(pattern, re.MULTILINE)
    return LogProbe(pattern)


def call(fn: Callable[[Any], object], description: str | None = None) -> CallProbe:
    """Ready once ``fn(service)`` returns without raising, and returns anything but False."""
    return CallProbe(fn, description)


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


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def wait_ready(
    target: Target, probes: Sequence[Probe], *, timeout: float, exit_code: Callable[[], int | None]
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
    target: Target, probes: Sequence[Probe], progress: _Progress, what: str
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


def port_of(target: Target, name: str | None) -> int:
    """The service's main port, or its port called ``name``; ValueError when it has none."""
    if name is None:
        return target.port
    try:
        return target.ports[name]
    except KeyError:
        known = ", ".join(target.ports) or "none"
        raise ValueError(
            f"service {target.name!r} has no port named {name!r}; its ports: {known}"
        ) from None


def _name(fn: Callable[..., object]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")
