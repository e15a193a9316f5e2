"""A process under test: started from an argument list, broken on purpose (killed, stopped,
paused, restarted), and cleaned up with everything it started.

The process leads a session and process group of its own, so every signal reaches the
whole tree; stdout and stderr go to a log file that :meth:`ProcessService.logs` reads.
Each fault is recorded in the test's :class:`~pytest_chaos.faults.FaultLog` (and so reported
through the ``pytest_chaos_fault_*`` hooks); under dry run it is recorded, not applied.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..faults import ActiveFault, FaultLog, FaultRecord
from . import ports as ports_module
from . import procs
from .errors import ServiceError
from .ready import Probe, wait_ready

GONE_TIMEOUT_S = 10.0
"""How long a process group may take to disappear after SIGKILL."""


class ProcessService:
    """A service run as a local process; made by ``service.process(...)``."""

    kind = "process"

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        ports: Mapping[str, int],
        probes: Sequence[Probe],
        ready_timeout: float,
        stop_timeout: float,
        log_path: Path,
        faults: FaultLog,
        marker: str,
    ) -> None:
        self.name = name
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = dict(ports)
        self.argv = [ports_module.expand(arg, ports) for arg in argv]
        self.env = {key: ports_module.expand(value, ports) for key, value in env.items()}
        self.env[procs.MARKER] = marker
        self.cwd = cwd
        self.probes = list(probes)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.log_path = log_path
        self.marker = marker
        self._faults = faults
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._pause: ActiveFault | None = None
        self._down: list[Callable[[], None]] = []  # rollbacks of kill, stop, terminate
        for probe in self.probes:
            probe.validate(self)

    def __repr__(self) -> str:
        return f"<ProcessService {self.name!r} {self.state}>"

    # -- where it is -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The main port: ``{port}``, or else the first port the command line names."""
        if ports_module.MAIN in self.ports:
            return self.ports[ports_module.MAIN]
        if self.ports:
            return next(iter(self.ports.values()))
        raise ServiceError(
            f"service {self.name!r} has no port: put {{port}} in its argv or env, or pass ports="
        )

    @property
    def address(self) -> str:
        """``host:port``, for clients and proxies (``toxiproxy.proxy(upstream=...)``)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.address}"

    # -- what it is doing ------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The process id while it runs (paused included); None once it has exited."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def paused(self) -> bool:
        return self._pause is not None and self._pause.active

    @property
    def returncode(self) -> int | None:
        """The exit code of the last run (negative: the signal that ended it), or None
        while it runs or before it ever started."""
        return None if self._process is None else self._process.poll()

    @property
    def state(self) -> str:
        if self._process is None:
            return "not started"
        if self.running:
            return (
                f"paused, pid {self._process.pid}"
                if self.paused
                else f"running, pid {self._process.pid}"
            )
        return f"exited with code {self._process.returncode}"

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of its output (stdout and stderr, every run so far)."""
        return tail(self.log_path, lines)

    def output_since_start(self) -> str:
        """Everything it wrote since it last started."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    # -- life cycle: not faults ------------------------------------------------------------

    def start(self, *, wait: bool = True) -> ProcessService:
        """Start it (again), and wait until its readiness probes pass; a kill, stop or
        terminate of this test counts as rolled back from here. A running service is left
        as it is."""
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
            exit_code=lambda: self.returncode,
        )

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit; its exit code. ServiceError after ``timeout`` s."""
        process = self._require_started()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"service {self.name!r} still runs after {timeout:g} s ({self.state})"
            ) from None

    # -- faults ----------------------------------------------------------------------------

    def kill(self) -> ActiveFault:
        """SIGKILL the whole process tree, and return once it is gone: from here clients
        find the port closed. Lasts until :meth:`start` (or ``end()``, or the ``with``
        block's end, which start it again) or teardown."""
        return self._take_down("kill", {"signal": "SIGKILL"}, self._kill_and_reap)

    def terminate(self) -> ActiveFault:
        """SIGTERM the whole tree and return at once (:meth:`wait_exit` waits for the exit);
        a graceful shutdown the test can watch. Ends like :meth:`kill`."""
        return self._take_down("terminate", {"signal": "SIGTERM"}, self._send_term)

    def stop(self, timeout: float | None = None) -> ActiveFault:
        """Stop it as an orchestrator would: SIGTERM, then SIGKILL after ``timeout``
        seconds (default ``stop_timeout``). Returns once the whole tree is gone; ends like
        :meth:`kill`."""
        grace = self.stop_timeout if timeout is None else timeout
        return self._take_down("stop", {"timeout": grace}, lambda: self._shut_down(grace))

    def pause(self) -> ActiveFault:
        """SIGSTOP the whole tree: connections are accepted by the kernel but nothing
        answers, so clients time out. Lasts until :meth:`resume` (or ``end()``, or the
        ``with`` block's end) or teardown, which sends SIGCONT."""
        if self.paused:
            assert self._pause is not None
            return self._pause
        pid = self._require_running("pause")
        fault = FaultRecord("pause", self.name, {"pid": pid}, dry_run=self._faults.dry_run)
        self._pause = ActiveFault(fault, self._faults.record(fault, self._continue))
        if not fault.dry_run:
            self._signal(signal.SIGSTOP)
            procs.wait_until(lambda: procs.state(pid) in ("T", None), GONE_TIMEOUT_S)
        return self._pause

    def resume(self) -> None:
        """End a pause: SIGCONT to the whole tree."""
        if self._pause is not None:
            self._pause.end()

    def restart(self, timeout: float | None = None) -> None:
        """Stop it (as :meth:`stop`; a service that is not running is just started) and
        start it again on the same ports; returns once it is ready. Recorded as one fault,
        rolled back when the service is back."""
        grace = self.stop_timeout if timeout is None else timeout
        self._require_started()
        fault = FaultRecord("restart", self.name, {"pid": self.pid}, dry_run=self._faults.dry_run)
        rollback = self._faults.record(fault, lambda: None)
        if not fault.dry_run:
            self.resume()
            self._shut_down(grace)
            self._launch(wait=True)
        self._end_down_faults()
        rollback()

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the whole tree (SIGTERM, then SIGKILL after ``stop_timeout``) and check that
        no process of it is left; ServiceError naming them otherwise."""
        if self._process is not None:
            self._shut_down(self.stop_timeout)

    # -- the machinery ---------------------------------------------------------------------

    def _launch(self, *, wait: bool) -> None:
        __tracebackhide__ = True
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            with self.log_path.open("ab") as log:
                self._process = procs.spawn(self.argv, stdout=log, env=self.env, cwd=self.cwd)
        except OSError as error:
            raise ServiceError(
                f"cannot start service {self.name!r} ({self.argv[0]}): {error}"
            ) from None
        self._pause = None
        if wait:
            try:
                self.wait_ready()
            except ServiceError:
                self._shut_down(0)  # nothing half-started stays behind
                raise

    def _take_down(
        self, kind: str, details: dict[str, Any], action: Callable[[], None]
    ) -> ActiveFault:
        pid = self._require_running(kind)
        fault = FaultRecord(kind, self.name, {"pid": pid, **details}, dry_run=self._faults.dry_run)
        rollback = self._faults.record(fault, lambda: None)  # teardown stops it anyway
        self._down.append(rollback)
        if not fault.dry_run:
            action()
        return ActiveFault(fault, rollback, end=self.start)

    def _end_down_faults(self) -> None:
        while self._down:
            self._down.pop(0)()

    def _signal(self, sig: int) -> None:
        if self._process is not None:
            procs.signal_all(self._process.pid, self.marker, sig)

    def _continue(self) -> None:
        self._signal(signal.SIGCONT)

    def _send_term(self) -> None:
        self._signal(signal.SIGTERM)
        self._continue()  # a stopped process handles SIGTERM only once it runs again
        self.resume()  # so this test's pause, if any, is over

    def _kill_and_reap(self) -> None:
        self._signal(signal.SIGKILL)
        self.resume()  # a pause ends with the process
        self._wait_gone(GONE_TIMEOUT_S)

    def _shut_down(self, grace: float) -> None:
        """SIGTERM, up to ``grace`` seconds, SIGKILL; return once no process is left."""
        if self._members():
            self._send_term()
            if not self._wait_gone(grace, check=False):
                self._kill_and_reap()
        self.resume()

    def _wait_gone(self, timeout: float, *, check: bool = True) -> bool:
        process = self._require_started()
        gone = procs.wait_until(lambda: process.poll() is not None and not self._members(), timeout)
        if not gone and check:
            raise ServiceError(
                f"service {self.name!r}: processes {self._members()} are still alive "
                f"{timeout:g} s after SIGKILL"
            )
        return gone

    def _members(self) -> list[int]:
        return [] if self._process is None else procs.members(self._process.pid, self.marker)

    def _require_started(self) -> subprocess.Popen[bytes]:
        __tracebackhide__ = True
        if self._process is None:
            raise ServiceError(f"service {self.name!r} was never started; call start()")
        return self._process

    def _require_running(self, action: str) -> int:
        __tracebackhide__ = True
        if not self.running:
            raise ServiceError(
                f"cannot {action} service {self.name!r}: it is not running ({self.state}); "
                "start() it first"
            )
        assert self._process is not None
        return self._process.pid


def tail(path: Path, lines: int, block: int = 8192) -> str:
    """The last ``lines`` lines of the file at ``path`` ("" if it does not exist), read
    from the end so that a long log costs no more than its tail."""
    try:
        log = path.open("rb")
    except FileNotFoundError:
        return ""
    with log:
        end = log.seek(0, os.SEEK_END)
        data = b""
        position = end
        while position > 0 and data.count(b"\n") <= lines:
            position = max(0, position - block)
            log.seek(position)
            data = log.read(end - position)
    text = data.decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""
