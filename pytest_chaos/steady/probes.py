"""Probes: checks of the system, described before it runs.

The same probe serves twice. As a readiness check (``service.process(..., ready=...)``) it
is checked against a service until it passes. As a steady-state probe of an experiment it
measures a value (an HTTP answer, a connection, a function's result, the load's latency
percentiles), judges it against its tolerance, and becomes a run in the journal. A probe may
retry until it holds, within a deadline.
"""

from __future__ import annotations

import functools
import re
import socket
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, final

from pytest_chaos.core.activity import provider_of, python_provider
from pytest_chaos.core.checks import seconds
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.steady.arguments import (
    check_address,
    check_path,
    check_port_name,
    http_body,
    http_statuses,
    probe_name,
    timeout_of,
)
from pytest_chaos.steady.tolerance import Tolerance, tolerance

if TYPE_CHECKING:
    from pytest_chaos.steady.metrics import Metrics


class ProbeTarget(Protocol):
    """What a readiness probe checks: a service handle."""

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


class NotReady(ChaosError):
    """Raised by a probe whose service is not ready yet; the message says why."""


@final
@dataclass
class ProbeContext:
    """What a probe may look at: the service it checks (readiness), and the metrics of the
    load over the current phase of an experiment (for SLO probes)."""

    target: ProbeTarget | None = None
    metrics: Callable[[], Metrics] | None = None
    #: The window is still filling (checks during the method): an SLO with too few
    #: requests so far is not judged yet, rather than failed.
    window_open: bool = False


@final
@dataclass(frozen=True)
class ProbeRun:
    """One steady-state check: what the probe measured (``output``), whether that is
    within tolerance, what was expected, and why not (``deviation``); ``error`` when the
    probe could not measure at all."""

    name: str
    output: Any
    tolerance_met: bool
    expected: str
    deviation: str | None
    error: str | None
    started_at: float
    ended_at: float
    attempts: int = 1

    def explain(self) -> str:
        """One line: ``health: answered 503, expected status 200``."""
        if self.tolerance_met:
            return f"{self.name}: held ({self.expected})"
        return f"{self.name}: {self.deviation or self.error}; expected {self.expected}"


class Probe:
    """A check described before the system runs. Subclasses measure a value and judge it;
    :meth:`check` (readiness) and :meth:`run` (steady state) are built on those two."""

    #: The name in journals and accounts; each probe derives one when it is not given.
    label: str | None = None
    #: Retry an unmet steady-state check for up to this many seconds before it counts.
    retry_for_s: float | None = None

    @property
    def name(self) -> str:
        return self.label or self.default_name()

    def default_name(self) -> str:
        return type(self).__name__

    def describe(self, target: ProbeTarget) -> str:
        """What the probe tries, for error messages (``TCP connect to 127.0.0.1:6379``)."""
        raise NotImplementedError

    def expected(self) -> str:
        """What the probe's tolerance allows, in words."""
        return "the check to pass"

    def measure(self, context: ProbeContext) -> Any:
        """The value the probe observes; raises when it cannot observe at all."""
        raise NotImplementedError

    def judge(self, value: Any) -> str | None:
        """None when ``value`` is within tolerance, else what is wrong with it."""
        return None

    def validate(self, target: ProbeTarget) -> None:
        """Raise ValueError now if the probe can never work for ``target``."""

    def validate_steady(self) -> None:
        """Raise ValueError now if the probe can never work as a steady-state probe, with
        no service to check."""

    def check(self, target: ProbeTarget) -> None:
        """Return when ``target`` is ready; raise (NotReady or any error) while it is not."""
        problem = self.judge(self.measure(ProbeContext(target=target)))
        if problem is not None:
            raise NotReady(problem)

    def run(self, context: ProbeContext) -> ProbeRun:
        """Measure and judge once, or, with ``retry_for_s``, until the value holds or the
        time is up (the last attempt counts)."""
        import tenacity  # here: loading the plugin must stay cheap

        started = time.time()
        attempts = 0
        outcome: tuple[Any, str | None, str | None] = (None, None, None)

        def attempt() -> bool:
            nonlocal attempts, outcome
            attempts += 1
            try:
                value = self.measure(context)
            except Exception as error:
                outcome = (None, None, f"{type(error).__name__}: {error}")
                return False
            outcome = (value, self.judge(value), None)
            return outcome[1] is None

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_delay(self.retry_for_s or 0),
            wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
            retry=tenacity.retry_if_result(lambda held: not held),
            retry_error_callback=lambda state: False,
        )
        held = bool(retrying(attempt))
        value, deviation, error = outcome
        return ProbeRun(
            name=self.name,
            output=value,
            tolerance_met=held,
            expected=self.expected(),
            deviation=deviation,
            error=error,
            started_at=started,
            ended_at=time.time(),
            attempts=attempts,
        )

    def to_activity(self) -> dict[str, Any]:
        """The probe as a Chaos Toolkit activity, for the journal's experiment."""
        return {"type": "probe", "name": self.name, "tolerance": True, "provider": self.provider()}

    def provider(self) -> dict[str, Any]:
        """The activity's provider: a ``python`` one that chaostoolkit-lib accepts."""
        return python_provider(__name__, type(self).__name__)


@final
@dataclass(frozen=True)
class TcpProbe(Probe):
    """A TCP connection is accepted: on the service's port (or its port ``port``), or at
    ``address`` (``host:port``) when there is no service."""

    port: str | None = None
    timeout: float = 1.0
    address: str | None = None
    label: str | None = None
    retry_for_s: float | None = None

    def default_name(self) -> str:
        return f"tcp {self.address}" if self.address else "tcp"

    def validate(self, target: ProbeTarget) -> None:
        if self.address is None:
            port_of(target, self.port)

    def validate_steady(self) -> None:
        self._address(None)

    def _address(self, target: ProbeTarget | None) -> tuple[str, int]:
        if self.address is not None:
            host, _, port = self.address.rpartition(":")
            return host.strip("[]"), int(port)
        if target is None:
            raise ValueError("probes.tcp() without address= needs a service to check")
        return target.host, port_of(target, self.port)

    def describe(self, target: ProbeTarget) -> str:
        host, port = self._address(target)
        return f"TCP connect to {host}:{port}"

    def expected(self) -> str:
        return "a TCP connection to be accepted"

    def measure(self, context: ProbeContext) -> bool:
        socket.create_connection(self._address(context.target), timeout=self.timeout).close()
        return True

    def provider(self) -> dict[str, Any]:
        return python_provider(__name__, "tcp", {"address": self.address, "timeout": self.timeout})


@final
@dataclass(frozen=True)
class HttpProbe(Probe):
    """``GET path`` (or a full URL) answers with ``status`` (and a body that passes
    ``body``), within ``latency_ms_max`` when given."""

    path: str = "/"
    status: int | Collection[int] = 200
    body: str | Callable[[str], object] | Tolerance | None = None
    port: str | None = None
    timeout: float = 2.0
    latency_ms_max: float | None = None
    method: str = "GET"
    label: str | None = None
    retry_for_s: float | None = None

    def default_name(self) -> str:
        return f"http {self.path}"

    def validate(self, target: ProbeTarget) -> None:
        self.url(target)

    def validate_steady(self) -> None:
        self.url(None)

    def url(self, target: ProbeTarget | None) -> str:
        if "://" in self.path:
            return self.path
        if target is None:
            raise ValueError(
                f"probes.http({self.path!r}) has no host: give a full URL (http://...) to "
                "use it outside a service's ready="
            )
        path = self.path if self.path.startswith("/") else "/" + self.path
        return f"http://{target.host}:{port_of(target, self.port)}{path}"

    def describe(self, target: ProbeTarget) -> str:
        return f"HTTP {self.method} {self.url(target)} answering {self.expected()[7:]}"

    def expected(self) -> str:
        wanted = self.status if isinstance(self.status, int) else sorted(self.status)
        text = f"status {wanted}"  # describe() drops the "status " word
        if isinstance(self.body, str):
            text += f" with {self.body!r} in the body"
        elif isinstance(self.body, Tolerance):
            text += f" with a body {self.body.describe()}"
        elif self.body is not None:
            text += f" with a body that {_name(self.body)} accepts"
        if self.latency_ms_max is not None:
            text += f" within {self.latency_ms_max:g} ms"
        return text

    def measure(self, context: ProbeContext) -> dict[str, Any]:
        started = time.perf_counter()
        url = self.url(context.target)
        response = _probe_client().request(self.method, url, timeout=self.timeout)
        latency_ms = (time.perf_counter() - started) * 1000
        return {"status": response.status_code, "body": response.text, "latency_ms": latency_ms}

    def judge(self, value: dict[str, Any]) -> str | None:
        allowed = {self.status} if isinstance(self.status, int) else set(self.status)
        code, text = value["status"], value["body"]
        if code not in allowed:
            return f"answered {code}: {_excerpt(text)}"
        if isinstance(self.body, str):
            if self.body not in text:
                return f"body without {self.body!r}: {_excerpt(text)}"
        elif isinstance(self.body, Tolerance):
            if not self.body.check(text):
                return f"body not {self.body.describe()}: {_excerpt(text)}"
        elif self.body is not None and not self.body(text):
            return f"{_name(self.body)} rejected the body: {_excerpt(text)}"
        latency = value["latency_ms"]
        if self.latency_ms_max is not None and latency > self.latency_ms_max:
            over = latency - self.latency_ms_max
            return f"answered in {latency:.0f} ms, {over:.0f} ms over {self.latency_ms_max:g} ms"
        return None

    def to_activity(self) -> dict[str, Any]:
        status = self.status if isinstance(self.status, int) else sorted(self.status)
        return {
            "type": "probe",
            "name": self.name,
            "tolerance": status,
            "provider": {
                "type": "http",
                "url": self.path,
                "method": self.method,
                "timeout": self.timeout,
            },
        }


@final
@dataclass(frozen=True)
class LogProbe(Probe):
    """The service's output since it (last) started matches ``pattern``."""

    pattern: re.Pattern[str]
    label: str | None = None
    retry_for_s: float | None = None

    def default_name(self) -> str:
        return f"log {self.pattern.pattern!r}"

    def describe(self, target: ProbeTarget) -> str:
        return f"a log line matching {self.pattern.pattern!r}"

    def expected(self) -> str:
        return f"a log line matching {self.pattern.pattern!r}"

    def validate_steady(self) -> None:
        raise ValueError(f"{self.name}: probes.log() reads a service's output; use it in ready=")

    def measure(self, context: ProbeContext) -> str:
        if context.target is None:
            raise ValueError("probes.log() reads a service's output: use it in ready=")
        return context.target.output_since_start()

    def judge(self, value: str) -> str | None:
        if self.pattern.search(value):
            return None
        return f"no output matches {self.pattern.pattern!r} yet"


@final
@dataclass(frozen=True)
class CallProbe(Probe):
    """``fn(service)`` (readiness) or ``fn()`` (steady state) returns a value within
    ``tolerance``; without one, anything but False, without raising."""

    fn: Callable[..., object]
    description: str | None = None
    tolerance: Tolerance | None = None
    label: str | None = None
    retry_for_s: float | None = None

    def default_name(self) -> str:
        return self.description or _name(self.fn)

    def describe(self, target: ProbeTarget) -> str:
        return self.description or f"{_name(self.fn)}(service)"

    def expected(self) -> str:
        if self.tolerance is not None:
            return self.tolerance.describe()
        return "anything but False"

    def measure(self, context: ProbeContext) -> object:
        return self.fn(context.target) if context.target is not None else self.fn()

    def judge(self, value: object) -> str | None:
        held = self.tolerance.check(value) if self.tolerance is not None else value is not False
        if held:
            return None
        shown = repr(value)
        return f"{_name(self.fn)} returned {shown if len(shown) <= 200 else shown[:200] + '...'}"

    def provider(self) -> dict[str, Any]:
        return provider_of(self.fn)

    def to_activity(self) -> dict[str, Any]:
        activity = super().to_activity()
        if self.tolerance is not None:
            activity["tolerance"] = self.tolerance.to_json()
        return activity


# -- constructors: the public vocabulary ------------------------------------------------------


def tcp(
    port: str | None = None,
    *,
    address: str | None = None,
    timeout: float = 1.0,
    name: str | None = None,
    retry_for_s: float | None = None,
) -> TcpProbe:
    """A TCP connection is accepted: on the service's port (or the port named ``port``:
    ``{port:NAME}``), or at ``address`` (``"127.0.0.1:6379"``) for a steady-state probe."""
    if port is not None:
        check_port_name("probes.tcp", port)
        if address is not None:
            raise ValueError(
                f"probes.tcp({port!r}, address={address!r}): give the port of a service or "
                "an address, not both"
            )
    if address is not None:
        check_address(address)
    return TcpProbe(
        port, timeout_of(timeout), address, probe_name(name), retry_seconds(retry_for_s)
    )


def http(
    path: str = "/",
    *,
    status: int | Collection[int] = 200,
    body: str | Callable[[str], object] | Tolerance | None = None,
    port: str | None = None,
    timeout: float = 2.0,
    latency_ms_max: float | None = None,
    method: str = "GET",
    name: str | None = None,
    retry_for_s: float | None = None,
) -> HttpProbe:
    """``GET path`` on the service (or a full URL) answers ``status`` (a code, or a
    collection of codes); with ``body``, the body contains that string, or passes that
    tolerance (or Chaos Toolkit form of one) or predicate; with ``latency_ms_max``, the
    answer comes within that time."""
    check_path(path)
    if port is not None:
        check_port_name("probes.http", port)
        if "://" in path:
            raise ValueError(
                f"probes.http({path!r}, port={port!r}): a full URL has its port already; "
                "give port= with a path of a service"
            )
    if latency_ms_max is not None and (
        isinstance(latency_ms_max, bool)
        or not isinstance(latency_ms_max, (int, float))
        or not latency_ms_max > 0
        or latency_ms_max == float("inf")
    ):
        raise ValueError(f"latency_ms_max={latency_ms_max!r}: use milliseconds, more than 0")
    if not isinstance(method, str) or not re.fullmatch(r"[A-Za-z]+", method):
        raise ValueError(f"method={method!r}: use an HTTP method such as 'GET' or 'POST'")
    return HttpProbe(
        path,
        http_statuses(status),
        http_body(body),
        port,
        timeout_of(timeout),
        latency_ms_max,
        method.upper(),
        probe_name(name),
        retry_seconds(retry_for_s),
    )


def log(pattern: str | re.Pattern[str], *, name: str | None = None) -> LogProbe:
    """The service's output (since it last started) matches the regular expression
    ``pattern`` (``re.MULTILINE``: ``^`` and ``$`` match at each line)."""
    if isinstance(pattern, str):
        try:
            pattern = re.compile(pattern, re.MULTILINE)
        except re.error as error:
            raise ValueError(
                f"probes.log({pattern!r}): not a regular expression: {error}"
            ) from None
    elif not isinstance(pattern, re.Pattern) or not isinstance(pattern.pattern, str):
        raise TypeError(f"probes.log({pattern!r}): give a regular expression (a str)")
    return LogProbe(pattern, probe_name(name))


def call(
    fn: Callable[..., object],
    description: str | None = None,
    *,
    tolerance: Any = None,
    name: str | None = None,
    retry_for_s: float | None = None,
) -> CallProbe:
    """``fn(service)`` (readiness) or ``fn()`` (steady state) returns a value within
    ``tolerance`` (any form :func:`pytest_chaos.steady.tolerance.tolerance` accepts), or,
    without one, anything but False, without raising."""
    if not callable(fn):
        raise TypeError(f"probes.call({fn!r}): give a function")
    if description is not None and (not isinstance(description, str) or not description):
        raise TypeError(f"probes.call(description={description!r}): use a non-empty string")
    judged = None if tolerance is None else _tolerance(tolerance)
    return CallProbe(fn, description, judged, probe_name(name), retry_seconds(retry_for_s))


def _tolerance(spec: Any) -> Tolerance:
    return spec if isinstance(spec, Tolerance) else tolerance(spec)


def retry_seconds(value: float | None) -> float | None:
    return None if value is None else seconds("retry_for_s", value, allow_zero=True)


@functools.cache
def _probe_client() -> Any:
    """The HTTP client of every probe: made once (a new client per check costs an SSL
    context, tens of milliseconds of CPU) and keeping no connection alive, so each check
    opens a connection of its own as a new client would."""
    import httpx  # here: loading the plugin must stay cheap

    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def port_of(target: ProbeTarget, name: str | None) -> int:
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
