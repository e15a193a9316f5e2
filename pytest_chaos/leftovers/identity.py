"""The identity of a test run, written into the names of what it creates on servers it
does not own, so that a later run can tell a dead run's leftovers from a live run's things.

A name ``db`` becomes ``db.pytest-chaos.HOST.MACHINE.PID.START.SESSION``: the host name, a
tag of this kernel boot and pid namespace (two containers that share a host name and a
kernel have different pid namespaces, so their pids mean different processes), the process
id, its start time in clock ticks since boot (so that a reused pid is not taken for the
run), and a random tag of the session (a pytest session run inside another, as pytester
does, is a run of its own in the same process). A real Toxiproxy accepts such names for
proxies and toxics.

A run can only see processes of its own machine: whether a run elsewhere is alive, it
cannot tell. Standard library only (the supervisor process imports it).
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import final

MARK = ".pytest-chaos."
"""What separates a name from the identity of the run that made it."""

_HOST_LENGTH = 32
_SUFFIX = (  # compiled on first use (re caches it)
    re.escape(MARK)
    + r"(?P<host>[A-Za-z0-9-]+)\.(?P<machine>[0-9a-f]{8})\.(?P<pid>\d+)\.(?P<start>\d+)"
    + r"\.(?P<session>[0-9a-f]{6})\Z"
)

ALIVE, DEAD, ELSEWHERE = "alive", "dead", "elsewhere"


@final
@dataclass(frozen=True)
class RunIdentity:
    """Which run made something: ``host`` (letters, digits and '-'), ``machine`` (8 hex
    digits for the boot and pid namespace), ``pid`` and ``start`` (0 where unknown) of its
    process, and ``session`` (6 hex digits)."""

    host: str
    machine: str
    pid: int
    start: int
    session: str

    @classmethod
    def new(cls) -> RunIdentity:
        """The identity of a new run of this process."""
        return cls.of_process(os.getpid())

    @classmethod
    def of_process(cls, pid: int) -> RunIdentity:
        """The identity of a new run of process ``pid`` of this machine."""
        return cls(_host(), machine_tag(), pid, process_start(pid), secrets.token_hex(3))

    @property
    def suffix(self) -> str:
        """What :meth:`tag` appends to a name."""
        return f"{MARK}{self.host}.{self.machine}.{self.pid}.{self.start}.{self.session}"

    def tag(self, name: str) -> str:
        """``name`` marked as made by this run."""
        return name + self.suffix

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def status(self) -> str:
        """ALIVE or DEAD (its process is), seen from this process; ELSEWHERE for a run on
        another machine (another host, boot or pid namespace), whose processes this one
        cannot see."""
        if (self.host, self.machine) != (_host(), machine_tag()):
            return ELSEWHERE
        if not pid_exists(self.pid) or process_state(self.pid) == "Z":
            return DEAD
        if self.start and self.start != process_start(self.pid):
            return DEAD  # the pid was reused by another process
        return ALIVE


def parse(name: str) -> tuple[str, RunIdentity] | None:
    """The name as given and the identity of the run that made it; None for a name that
    carries no identity."""
    found = re.search(_SUFFIX, name)
    if found is None:
        return None
    identity = RunIdentity(
        found["host"], found["machine"], int(found["pid"]), int(found["start"]), found["session"]
    )
    return name[: found.start()], identity


def untag(name: str) -> str:
    """``name`` without the identity of the run that made it (as it was given)."""
    parsed = parse(name)
    return name if parsed is None else parsed[0]


def machine_tag() -> str:
    """8 hex digits that differ between boots and between pid namespaces."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{zlib.crc32(f'{boot_id()}|{namespace}'.encode()):08x}"


def _host() -> str:
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-")
    return cleaned[:_HOST_LENGTH] or "host"


def boot_id() -> str:
    """This boot's id (Linux), or ''."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> int:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or 0."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_state(pid: int) -> str | None:
    """The scheduler state letter of ``pid`` (``R``, ``S``, ``T`` for stopped, ``Z`` for a
    zombie...), or None when it is gone or the platform has no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2 :].split()[0].decode()


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
