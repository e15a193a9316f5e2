"""What every kind of service shares: where it listens, readiness, and the faults that take
it down (kill, stop), freeze it (pause) or bounce it (restart), each recorded in the test's
:class:`~pytest_chaos.faults.FaultLog` (and so reported through the ``pytest_chaos_fault_*``
hooks); under dry run a fault is recorded, not applied.

A kind of service (a process, a container) says how to do each step; this class says when,
and what is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pytest_chaos.core.faultlog import ActiveFault, FaultLog, FaultRecord
from pytest_chaos.services import ports as ports_module
from pytest_chaos.services.errors import ServiceError
from pytest_chaos.services.ready import wait_ready
from pytest_chaos.steady.probes import Probe

_S = TypeVar("_S", bound="Service")


class Service:
    """A service under test; subclasses give the steps (``_launch``, ``_kill_and_reap``...)."""

    kind = "service"

    def __init__(
        self,
        name: str,
        *,
        ports: Mapping[str, int],
        probes: Sequence[Probe],
        ready_timeout: float,
        stop_timeout: float,
        faults: FaultLog,
    ) -> None:
        self.name = name
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = dict(ports)
        self.probes = list(probes)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._faults = faults
        self._pause: ActiveFault | None = None
        self._down: list[Callable[[], None]] = []  # rollbacks of the take-down faults
        for probe in self.probes:
            probe.validate(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.state}>"

    # -- where it is -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The main port: ``{port}`` (a process) or the first published port (a container),
        or else the first port it has."""
        if ports_module.MAIN in self.ports:
            return self.ports[ports_module.MAIN]
        if self.ports:
            return next(iter(self.ports.values()))
        raise ServiceError(f"service {self.name!r} has no port: {self._no_port_hint}")

    _no_port_hint = "give it one with ports="

    @property
    def address(self) -> str:
        """``host:port``, for clients and proxies (``toxiproxy.proxy(upstream=...)``)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.address}"

    # -- what it is doing: given by each kind ----------------------------------------------

    @property
    def running(self) -> bool:
        raise NotImplementedError

    @property
    def paused(self) -> bool:
        return self._pause is not None and self._pause.active

    @property
    def state(self) -> str:
        raise NotImplementedError

    @property
    def log_location(self) -> str:
        """Where its whole log is, for reports."""
        raise NotImplementedError

    def logs(self, lines: int = 50) -> str:
        raise NotImplementedError

    def output_since_start(self) -> str:
        raise NotImplementedError

    # -- life cycle: not faults ------------------------------------------------------------

    def start(self: _S, *, wait: bool = True) -> _S:
        """Start it (again), and wait until its readiness probes pass; a take-down fault of
        this test (kill, stop...) counts as rolled back from here. A running service is
        left as it is."""
        __tracebackhide__ = True
        if not self.running:
            self._launch(wait=wait)
        self._end_down_faults()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the readiness probes pass (ReadinessError otherwise)."""
        __tracebackhide__ = True
        wait_ready(
            self,
            self.probes,
            timeout=self.ready_timeout if timeout is None else timeout,
            exit_code=self._exit_code,
        )

    # -- faults ----------------------------------------------------------------------------

    def kill(self) -> ActiveFault:
        """Kill it with SIGKILL, and return once it is gone: from here clients find the port
        closed. Lasts until :meth:`start` (or ``end()``, or the ``with`` block's end, which
        start it again) or teardown."""
        return self._take_down("kill", {"signal": "SIGKILL"}, self._kill_and_reap)

    def stop(self, timeout: float | None = None) -> ActiveFault:
        """Stop it as an orchestrator would: SIGTERM, then SIGKILL after ``timeout``
        seconds (default ``stop_timeout``). Returns once it is gone; ends like :meth:`kill`."""
        grace = self.stop_timeout if timeout is None else timeout
        return self._take_down("stop", {"timeout": grace}, lambda: self._shut_down(grace))

    def pause(self) -> ActiveFault:
        """Freeze it: connections are accepted but nothing answers, so clients time out.
        Lasts until :meth:`resume` (or ``end()``, or the ``with`` block's end) or teardown."""
        if self._pause is not None and self._pause.active:
            return self._pause
        self._require_running("pause")
        fault = FaultRecord("pause", self.name, self._identity(), dry_run=self._faults.dry_run)
        self._pause = ActiveFault(fault, self._faults.record(fault, self._continue))
        if not fault.dry_run:
            self._freeze()
        return self._pause

    def resume(self) -> None:
        """End a pause."""
        if self._pause is not None:
            self._pause.end()

    def restart(self, timeout: float | None = None) -> None:
        """Stop it (as :meth:`stop`; a service that is not running is just started) and
        start it again on the same ports; returns once it is ready. Recorded as one fault,
        rolled back when the service is back."""
        grace = self.stop_timeout if timeout is None else timeout
        self._require_started()
        fault = FaultRecord("restart", self.name, self._identity(), dry_run=self._faults.dry_run)
        rollback = self._faults.record(fault, lambda: None)
        if not fault.dry_run:
            self.resume()
            self._shut_down(grace)
            self._launch(wait=True)
        self._end_down_faults()
        rollback()

    def close(self) -> None:
        """Stop it for good at teardown, leaving nothing behind."""
        raise NotImplementedError

    # -- the steps each kind gives ---------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        """What identifies the running instance, for fault records (``pid``...)."""
        raise NotImplementedError

    def _launch(self, *, wait: bool) -> None:
        raise NotImplementedError

    def _exit_code(self) -> int | None:
        """The exit code once it has exited; None while it runs."""
        raise NotImplementedError

    def _kill_and_reap(self) -> None:
        raise NotImplementedError

    def _shut_down(self, grace: float) -> None:
        """Ask it to stop, kill it after ``grace`` seconds; return once it is gone."""
        raise NotImplementedError

    def _freeze(self) -> None:
        raise NotImplementedError

    def _continue(self) -> None:
        """Undo :meth:`_freeze` (nothing if it is no longer frozen)."""
        raise NotImplementedError

    def _is_started(self) -> bool:
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------------

    def _take_down(
        self, kind: str, details: dict[str, Any], action: Callable[[], None]
    ) -> ActiveFault:
        self._require_running(kind)
        fault = FaultRecord(
            kind, self.name, {**self._identity(), **details}, dry_run=self._faults.dry_run
        )
        rollback = self._faults.record(fault, lambda: None)  # teardown stops it anyway
        self._down.append(rollback)
        if not fault.dry_run:
            action()
        return ActiveFault(fault, rollback, end=self.start)

    def _end_down_faults(self) -> None:
        while self._down:
            self._down.pop(0)()

    def _require_started(self) -> None:
        __tracebackhide__ = True
        if not self._is_started():
            raise ServiceError(f"service {self.name!r} was never started; call start()")

    def _require_running(self, action: str) -> None:
        __tracebackhide__ = True
        if not self.running:
            raise ServiceError(
                f"cannot {action} service {self.name!r}: it is not running ({self.state}); "
                "start() it first"
            )
