"""The session's supervisor, as the session sees it: a process (:mod:`.warden`) started on
first need that starts the session's processes for it, and ends them, with the run's
proxies, toxics and fill files, when the session closes it or dies however it dies.

:meth:`Supervisor.spawn` returns a :class:`SupervisedProcess`: the part of
``subprocess.Popen`` that services, hogs and proxy servers use (``pid``, ``poll``,
``wait``, ``returncode``, signals). Its exit status stays with the supervisor until the
session asks for it, so its pid and process group are not reused before the session knows
it has exited.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, final

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.leftovers import register, wire
from pytest_chaos.leftovers.identity import RunIdentity

START_TIMEOUT_S = 30.0
"""How long the supervisor may take to start (a loaded machine)."""
ANSWER_TIMEOUT_S = 60.0
"""How long a request may wait for its answer; closing ends processes and sweeps servers."""
ROOT = Path(__file__).resolve().parents[2]
"""The folder that holds this ``pytest_chaos``: the supervisor imports the same code."""
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from pytest_chaos.leftovers.warden import main; main(sys.argv[2:])"
)


class SupervisorError(ChaosError, RuntimeError):
    """The supervisor could not be started, or ended when it should not have."""


@final
class Supervisor:
    """One session's supervisor, started on the first request and ended by :meth:`close`
    (a later request starts a new one). Safe to use from several threads."""

    def __init__(self, identity: RunIdentity | None = None, folder: Path | None = None) -> None:
        self.identity = identity or RunIdentity.new()
        #: the register of what runs leave on this machine (:mod:`.register`)
        self.folder = folder or register.default_folder()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None
        self.generation = 0

    @property
    def pid(self) -> int | None:
        """The supervisor's pid while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the supervisor now, if it does not run yet."""
        with self._lock:
            if self._sock is None:
                self._start()

    def spawn(
        self,
        argv: Sequence[str],
        *,
        stdout: int,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        reader: IO[bytes] | None = None,
    ) -> SupervisedProcess:
        """Start ``argv`` leading a session and process group of its own, stdin from
        /dev/null, stdout and stderr to the descriptor ``stdout`` (the caller's to close;
        ``reader`` is the other end, if a pipe). OSError when it cannot be started."""
        args = [os.fspath(arg) for arg in argv]
        message = {
            "op": "spawn",
            "argv": args,
            "env": dict(os.environ if env is None else env),
            "cwd": None if cwd is None else os.fspath(cwd),
        }
        answer = self._request(message, [stdout])
        if "errno" in answer:
            raise OSError(answer["errno"], answer["error"], answer.get("filename"))
        return SupervisedProcess(self, args, int(answer["pid"]), reader)

    def returncode(self, process: SupervisedProcess) -> int | None:
        """The exit code of ``process`` once it has exited, else None."""
        if process.generation != self.generation or self._process is None:
            return -signal.SIGKILL  # it ended with the supervisor that started it
        answer = self._request({"op": "poll", "pid": process.pid})
        code = answer["returncode"]
        return None if code is None else int(code)

    def watch(self, url: str) -> None:
        """Remove this run's proxies and toxics from the Toxiproxy API at ``url`` when the
        session ends."""
        self._request({"op": "watch", "url": url})

    def close(self) -> None:
        """End every process the session started (SIGTERM, SIGKILL after a grace period),
        remove this run's proxies, toxics and fill files, and stop the supervisor."""
        with self._lock:
            sock, process, errors = self._sock, self._process, self._errors
            self._sock = self._process = self._errors = None
            if sock is None or process is None:
                return
            try:
                wire.send(sock, {"op": "close"})
                wire.receive(sock)
            except OSError:
                pass  # it ended already: it ends everything when the socket closes
            finally:
                sock.close()
                try:
                    process.wait(ANSWER_TIMEOUT_S)
                finally:
                    if errors is not None:
                        errors.close()

    # -- the machinery ---------------------------------------------------------------------

    def _request(self, message: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        with self._lock:
            sock = self._sock or self._start()
            try:
                wire.send(sock, message, fds)
                answer, _ = wire.receive(sock)
            except OSError:
                answer = None
            if answer is None:
                raise SupervisorError(
                    f"the session's supervisor (pid {self.pid}) ended: {self._output()}"
                )
        if "error" in answer and "errno" not in answer:
            raise SupervisorError(
                f"the session's supervisor refused {message['op']}: {answer['error']}"
            )
        return answer

    def _start(self) -> socket.socket:
        mine, theirs = wire.pair()
        self._errors = tempfile.TemporaryFile(prefix="pytest-chaos-supervisor-")  # noqa: SIM115 (kept open: closed by close())
        argv = [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _BOOT,
            str(ROOT),
            str(theirs.fileno()),
            str(os.getpid()),
            self.identity.suffix,
            str(self.folder),
        ]
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
                pass_fds=[theirs.fileno()],
                start_new_session=True,  # Ctrl-C in a terminal must not reach it
            )
        except OSError as error:
            mine.close()
            raise SupervisorError(f"cannot start the session's supervisor: {error}") from None
        finally:
            theirs.close()
        mine.settimeout(START_TIMEOUT_S)
        try:
            ready, _ = wire.receive(mine)
        except OSError:
            ready = None
        if ready is None:
            mine.close()
            self._process.kill()
            self._process.wait()
            raise SupervisorError(f"the session's supervisor did not start: {self._output()}")
        mine.settimeout(ANSWER_TIMEOUT_S)
        self._sock = mine
        self.generation += 1
        return mine

    def _output(self) -> str:
        if self._errors is None:
            return "no output"
        self._errors.seek(0)
        return self._errors.read().decode(errors="replace").strip()[-2000:] or "no output"


@final
class SupervisedProcess:
    """A process the supervisor started: the part of ``subprocess.Popen`` services use."""

    def __init__(
        self, supervisor: Supervisor, args: list[str], pid: int, stdout: IO[bytes] | None
    ) -> None:
        self.args = args
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self.generation = supervisor.generation
        self._supervisor = supervisor

    def __repr__(self) -> str:
        return f"<SupervisedProcess {self.pid} returncode={self.returncode}>"

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._supervisor.returncode(self)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit; its exit code. subprocess.TimeoutExpired after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.002
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(interval)
            interval = min(interval * 2, 0.05)
        return code

    def send_signal(self, sig: int) -> None:
        """Signal it, if it has not exited (its pid is not reused before it is polled)."""
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
