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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, final

from pytest_chaos._net import processes as procs
from pytest_chaos.core.faultlog import ActiveFault, FaultLog
from pytest_chaos.leftovers.supervisor import SupervisedProcess, Supervisor, SupervisorError
from pytest_chaos.services import ports as ports_module
from pytest_chaos.services.errors import ServiceError
from pytest_chaos.services.lifecycle import Service
from pytest_chaos.steady.probes import Probe

GONE_TIMEOUT_S = 10.0
"""How long a process group may take to disappear after SIGKILL."""


@final
class ProcessService(Service):
    """A service run as a local process; made by ``service.process(...)``."""

    kind = "process"
    _no_port_hint = "put {port} in its argv or env, or pass ports="

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
        supervisor: Supervisor,
    ) -> None:
        super().__init__(
            name,
            ports=ports,
            probes=probes,
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
            faults=faults,
        )
        self.argv = [ports_module.expand(arg, ports) for arg in argv]
        self.env = {key: ports_module.expand(value, ports) for key, value in env.items()}
        self.env[procs.MARKER] = marker
        self.cwd = cwd
        self.log_path = log_path
        self.marker = marker
        self._supervisor = supervisor
        self._process: SupervisedProcess | None = None
        self._log_offset = 0

    # -- what it is doing ------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The process id while it runs (paused included); None once it has exited."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

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

    @property
    def log_location(self) -> str:
        return str(self.log_path)

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of its output (stdout and stderr, every run so far)."""
        return tail(self.log_path, lines)

    def output_since_start(self) -> str:
        """Everything it wrote since it last started."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    # -- life cycle: not faults (start and wait_ready: Service) ----------------------------

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit; its exit code. ServiceError after ``timeout`` s."""
        process = self._started_process()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"service {self.name!r} still runs after {timeout:g} s ({self.state})"
            ) from None

    # -- faults (kill, stop, pause, resume, restart: Service) ------------------------------

    def terminate(self) -> ActiveFault:
        """SIGTERM the whole tree and return at once (:meth:`wait_exit` waits for the exit);
        a graceful shutdown the test can watch. Ends like :meth:`kill`."""
        return self._take_down("terminate", {"signal": "SIGTERM"}, self._send_term)

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the whole tree (SIGTERM, then SIGKILL after ``stop_timeout``) and check that
        no process of it is left; ServiceError naming them otherwise."""
        if self._process is not None:
            self._shut_down(self.stop_timeout)

    def kill_tree(self) -> None:
        """SIGKILL every process of it now, without waiting: the last resort of an
        interrupted teardown (the session's supervisor reaps them)."""
        self._signal(signal.SIGKILL)

    # -- the machinery ---------------------------------------------------------------------

    def _launch(self, *, wait: bool) -> None:
        __tracebackhide__ = True
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            with self.log_path.open("ab") as log:
                self._process = self._supervisor.spawn(
                    self.argv, stdout=log.fileno(), env=self.env, cwd=self.cwd
                )
        except (OSError, SupervisorError) as error:
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

    def _signal(self, sig: int) -> None:
        if self._process is not None:
            procs.signal_all(self._process.pid, self.marker, sig)

    def _continue(self) -> None:
        self._signal(signal.SIGCONT)

    def _send_term(self) -> None:
        self._signal(signal.SIGTERM)
        self._continue()  # a stopped process handles SIGTERM only once it runs again
        self.resume()  # so this test's pause, if any, is over

    def _freeze(self) -> None:
        assert self._process is not None
        pid = self._process.pid
        self._signal(signal.SIGSTOP)
        procs.wait_until(lambda: procs.state(pid) in ("T", None), GONE_TIMEOUT_S)

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
        process = self._started_process()
        gone = procs.wait_until(lambda: process.poll() is not None and not self._members(), timeout)
        if not gone and check:
            raise ServiceError(
                f"service {self.name!r}: processes {self._members()} are still alive "
                f"{timeout:g} s after SIGKILL"
            )
        return gone

    def _identity(self) -> dict[str, Any]:
        return {"pid": self.pid}

    def _exit_code(self) -> int | None:
        return self.returncode

    def _is_started(self) -> bool:
        return self._process is not None

    def _started_process(self) -> SupervisedProcess:
        self._require_started()
        assert self._process is not None
        return self._process

    def _members(self) -> list[int]:
        return [] if self._process is None else procs.members(self._process.pid, self.marker)


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
