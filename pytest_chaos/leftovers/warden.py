"""The supervisor process of one pytest session (its client is :mod:`.supervisor`).

It starts the processes the session asks for (services, resource hogs, proxy servers), as
their parent and, on Linux, as the subreaper of everything they start: a daemon that
leaves its parent is adopted by the supervisor, not by init. When the session ends, however
it ends (closed, crashed, ``os._exit``, SIGKILL: its socket closes, or its pid's
descriptor says it exited), the supervisor continues and terminates every process below
it, kills what is left after a grace period, then removes the run's proxies and toxics
from the Toxiproxy servers it was told about and the run's disk fill files.

It ignores Ctrl-C (it lives in a session of its own anyway) and ends as described on
SIGTERM. Standard library only: it runs without site-packages (``python -I -S``).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, final

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.leftovers import proxies, register, wire
from pytest_chaos.leftovers.processes import RUN_VARIABLE

GRACE_S = 1.0
"""How long processes get between SIGTERM and SIGKILL once the session has ended."""
KILL_TIMEOUT_S = 10.0
"""How long it keeps killing processes that do not go (another user's, a stuck one)."""
_POLL_S = 0.5
_LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


class _Stop(ChaosError):
    """SIGTERM: end everything, then exit."""


def main(argv: list[str]) -> None:
    """``SOCKET_FD PARENT_PID SUFFIX REGISTER_FOLDER``."""
    sock_fd, parent, suffix, folder = argv
    Warden(socket.socket(fileno=int(sock_fd)), int(parent), suffix, Path(folder)).run()


@final
class Warden:
    def __init__(self, sock: socket.socket, parent: int, suffix: str, folder: Path) -> None:
        self.sock = sock
        self.parent = parent
        self.suffix = suffix
        self.folder = folder
        self.urls: list[str] = []
        self.spawned: dict[int, subprocess.Popen[bytes]] = {}
        self.codes: dict[int, int] = {}
        self._prctl = _prctl()

    # -- the life of the session -----------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _stop)
        if self._prctl is not None:
            self._prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        os.set_blocking(wake_read, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        parent_exit = _pidfd(self.parent)
        register.enter_run(self.suffix, self.folder)
        try:
            if os.getppid() == self.parent:
                wire.send(self.sock, {"ready": True, "pid": os.getpid()})
                self._serve(wake_read, parent_exit)
        except (_Stop, OSError):
            pass
        finally:
            self.end_everything()

    def _serve(self, wake: int, parent_exit: int | None) -> None:
        """Answer requests until the session closes, ends, or asks to close."""
        watched: list[int | socket.socket] = [self.sock, wake]
        if parent_exit is not None:
            watched.append(parent_exit)
        while True:
            readable, _, _ = select.select(watched, [], [], _POLL_S)
            if wake in readable:
                while _drain(wake):
                    pass
                self._reap_orphans()
            if parent_exit in readable or os.getppid() != self.parent:
                return
            if self.sock not in readable:
                continue
            message, fds = wire.receive(self.sock)
            if message is None:
                return
            if message.get("op") == "close":
                self.end_everything()
                wire.send(self.sock, {"ok": True})
                return
            wire.send(self.sock, self._answer(message, fds))

    def _answer(self, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        try:
            op = message.get("op")
            if op == "spawn":
                return self._spawn(message, fds)
            if op == "poll":
                return {"returncode": self._returncode(int(message["pid"]))}
            if op == "watch":
                self.urls.append(str(message["url"]))
                return {"ok": True}
            return {"error": f"unknown request {op!r}"}
        except Exception as error:
            return {"error": f"{type(error).__name__}: {error}"}
        finally:
            for fd in fds:
                os.close(fd)

    # -- processes -------------------------------------------------------------------------

    def _spawn(self, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """Start ``argv`` leading a session of its own, stdout and stderr to ``fds[0]``,
        marked with the run's identity (which its children inherit)."""
        try:
            process = subprocess.Popen(
                message["argv"],
                stdin=subprocess.DEVNULL,
                stdout=fds[0],
                stderr=subprocess.STDOUT,
                env={**message["env"], RUN_VARIABLE: self.suffix},
                cwd=message.get("cwd"),
                start_new_session=True,
                preexec_fn=self._die_with_me(),
            )
        except OSError as error:
            return {"errno": error.errno, "error": error.strerror, "filename": error.filename}
        self.spawned[process.pid] = process
        self.codes.pop(process.pid, None)
        return {"pid": process.pid}

    def _die_with_me(self) -> Callable[[], None] | None:
        """For a child: SIGKILL it if this supervisor dies (it then cannot end it)."""
        prctl, me = self._prctl, os.getpid()
        if prctl is None:
            return None

        def setup() -> None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != me:
                os._exit(1)

        return setup

    def _returncode(self, pid: int) -> int | None:
        """The exit code of a process it started, once it has exited (reaped only now, so
        that its pid and process group are not reused before the session knows)."""
        if pid in self.codes:
            return self.codes[pid]
        process = self.spawned.get(pid)
        if process is None:
            raise ValueError(f"pid {pid} was not started here")
        code = process.poll()
        if code is not None:
            del self.spawned[pid]
            self.codes[pid] = code
        return code

    def _reap_orphans(self) -> None:
        """Reap the exited processes it adopted (those it started wait for a poll)."""
        for pid, state in _tree().get(os.getpid(), []):
            if state == "Z" and pid not in self.spawned:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _targets(self) -> list[int]:
        """Every live process below this one (on Linux, adopted ones included)."""
        if not _LINUX:
            return [pid for pid, process in self.spawned.items() if process.poll() is None]
        tree, found, queue = _tree(), [], [os.getpid()]
        while queue:
            for pid, state in tree.get(queue.pop(), []):
                queue.append(pid)
                if state != "Z":
                    found.append(pid)
        return found

    def _signal(self, targets: list[int], sig: int) -> None:
        send: Callable[[int, int], None] = os.kill if _LINUX else os.killpg
        for pid in targets:
            try:
                send(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def end_processes(self) -> None:
        """SIGTERM and SIGCONT to every process below, SIGKILL to what is left after
        ``GRACE_S``, until none is left; every child reaped."""
        targets = self._targets()
        if targets:
            self._signal(targets, signal.SIGTERM)
            self._signal(targets, signal.SIGCONT)  # a stopped process cannot handle it
            deadline = time.monotonic() + GRACE_S
            while self._targets() and time.monotonic() < deadline:
                self._reap_all()
                time.sleep(0.01)
            deadline = time.monotonic() + KILL_TIMEOUT_S
            while (targets := self._targets()) and time.monotonic() < deadline:
                self._signal(targets, signal.SIGKILL)
                time.sleep(0.005)
                self._reap_all()
            if targets:
                print(f"could not end the processes {targets}", file=sys.stderr)
        self._reap_all()

    def _reap_all(self) -> None:
        for pid in list(self.spawned):
            self._returncode(pid)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    # -- the end ---------------------------------------------------------------------------

    def end_everything(self) -> None:
        """End every process, then remove the run's proxies, toxics and fill files."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.end_processes()

        def mine(name: str) -> bool:
            return name.endswith(self.suffix)

        for url in self.urls:
            try:
                proxies.sweep(url, mine)
            except Exception as error:  # the server is gone: nothing there to remove
                print(f"could not remove this run's proxies at {url}: {error}", file=sys.stderr)
        self.urls.clear()
        register.sweep_fills(mine, self.folder)
        register.leave_run(self.suffix, self.folder)


def _stop(*_: object) -> None:
    raise _Stop


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _prctl() -> Callable[..., int] | None:
    if not _LINUX:
        return None
    import ctypes

    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when process ``pid`` exits (Linux 5.3+)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _tree() -> dict[int, list[tuple[int, str]]]:
    """Every process of ``/proc`` as children (pid, state) under their parent's pid."""
    tree: dict[int, list[tuple[int, str]]] = {}
    if not _LINUX:
        return tree
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                data = stat.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append((int(entry.name), fields[0].decode()))
    return tree
