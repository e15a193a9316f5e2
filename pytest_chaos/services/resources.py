"""Resource faults on this machine, each bounded and undone: a CPU hog (cores, seconds), a
memory hog (MB, seconds), a disk fill (a file of MB megabytes, removed at the end).

The hogs are processes (``_hog.py``) started by the session's supervisor, with a hard time
bound enforced by the kernel, so nothing outlives its seconds, the test, or a killed test
process. A disk fill's file is entered in the register of fill files before its first byte
is written (:mod:`pytest_chaos.leftovers.register`): teardown removes it, the supervisor
removes it if the test process dies, and the next run if both died.
"""

from __future__ import annotations

import errno
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import final

from pytest_chaos._net import processes as procs
from pytest_chaos.core.faultlog import ActiveFault, FaultLog, FaultRecord
from pytest_chaos.leftovers import register
from pytest_chaos.leftovers.supervisor import SupervisedProcess, Supervisor, SupervisorError
from pytest_chaos.services.errors import ServiceError

MAX_SECONDS = 86_400
"""The longest a hog may run, in seconds."""
MEMORY_SHARE = 0.9
"""The largest share of the available memory a memory hog may take."""
DISK_SHARE = 0.9
"""The largest share of a file system's free space a disk fill may take."""
READY_TIMEOUT_S = 30.0
MB = 2**20
_HOG = Path(__file__).with_name("_hog.py")
_NO_FALLOCATE = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


@final
class Hog(ActiveFault):
    """CPU or memory load held by child processes; it ends after its seconds, or earlier by
    :meth:`end`, on leaving its ``with`` block, or at teardown."""

    def __init__(
        self, record: FaultRecord, log: FaultLog, processes: list[SupervisedProcess]
    ) -> None:
        self.processes = processes
        super().__init__(record, log.record(record, self._stop))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    @property
    def running(self) -> bool:
        """Whether some of its processes still run (the load is on)."""
        return any(process.poll() is None for process in self.processes)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the load ends by itself (ServiceError after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise ServiceError(
                    f"the {self.record.kind} still runs after {timeout:g} s"
                ) from None

    def _stop(self) -> None:
        _end(self.processes)


@final
class DiskFill(ActiveFault):
    """A file of ``mb`` MiB under a directory, removed when the fault ends."""

    def __init__(
        self, record: FaultRecord, log: FaultLog, file: Path, remove: Callable[[], None]
    ) -> None:
        self.file = file
        super().__init__(record, log.record(record, remove))


def cpu_hog(log: FaultLog, supervisor: Supervisor, cores: int = 1, *, seconds: float) -> Hog:
    """Keep ``cores`` cores busy for ``seconds`` seconds (one busy process per core)."""
    check_cpu_hog(cores, seconds)
    record = FaultRecord(
        "cpu_hog", "localhost", {"cores": cores, "seconds": seconds}, dry_run=log.dry_run
    )
    return _hog(log, supervisor, record, [["cpu", str(seconds)]] * cores)


def memory_hog(log: FaultLog, supervisor: Supervisor, mb: int, *, seconds: float) -> Hog:
    """Hold ``mb`` MiB of resident memory for ``seconds`` seconds; returns once it is held."""
    check_memory_hog(mb, seconds, available_memory_mb())
    record = FaultRecord(
        "memory_hog", "localhost", {"mb": mb, "seconds": seconds}, dry_run=log.dry_run
    )
    return _hog(log, supervisor, record, [["memory", str(mb), str(seconds)]])


def disk_fill(
    log: FaultLog, supervisor: Supervisor, path: str | os.PathLike[str], mb: int
) -> DiskFill:
    """Write a file of ``mb`` MiB in the directory ``path`` (blocks really allocated);
    it is removed when the fault ends, whatever interrupts the writing."""
    directory = Path(path)
    if not directory.is_dir():
        raise ValueError(f"disk_fill(path={str(path)!r}): not an existing directory")
    check_disk_fill(mb, shutil.disk_usage(directory).free // MB, str(directory))
    file = directory / fill_name()
    record = FaultRecord(
        "disk_fill", str(directory), {"file": str(file), "mb": mb}, dry_run=log.dry_run
    )
    if record.dry_run:
        return DiskFill(record, log, file, lambda: None)
    supervisor.start()  # it removes the file if this process dies
    entry = register.enter_fill(file, supervisor.identity.suffix, supervisor.folder)

    def remove() -> None:
        file.unlink(missing_ok=True)
        register.leave(entry)

    log.defer(remove)  # before the first byte: teardown removes whatever was written
    try:
        _allocate(file, mb * MB)
    except BaseException:
        remove()
        raise
    return DiskFill(record, log, file, remove)


def available_memory_mb() -> int | None:
    """``MemAvailable`` in MiB, or None where ``/proc/meminfo`` does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def check_cpu_hog(cores: int, seconds: float) -> None:
    """ValueError unless ``cores`` is from 1 to this machine's cores and ``seconds`` bounded."""
    available = os.cpu_count() or 1
    if isinstance(cores, bool) or not isinstance(cores, int) or not 1 <= cores <= available:
        raise ValueError(
            f"cpu_hog(cores={cores!r}) is not allowed; use an integer from 1 to {available} "
            "(the cores of this machine)"
        )
    _check_seconds("cpu_hog", seconds)


def check_memory_hog(mb: int, seconds: float, limit: int | None) -> None:
    """ValueError unless ``mb`` is at most a share of ``limit`` MiB (when known) and
    ``seconds`` bounded."""
    allowed = f"1 to {int(limit * MEMORY_SHARE)}" if limit is not None else "1 or more"
    if (
        isinstance(mb, bool)
        or not isinstance(mb, int)
        or mb < 1
        or (limit is not None and mb > limit * MEMORY_SHARE)
    ):
        raise ValueError(
            f"memory_hog(mb={mb!r}) is not allowed; use an integer from {allowed} "
            f"(at most {MEMORY_SHARE:.0%} of the memory available now)"
        )
    _check_seconds("memory_hog", seconds)


def check_disk_fill(mb: int, free: int | None, where: str) -> None:
    """ValueError unless ``mb`` is from 1 to a share of the ``free`` MiB under ``where``
    (when known): a full file system would break more than the test means to."""
    limit = None if free is None else int(free * DISK_SHARE)
    if (
        isinstance(mb, bool)
        or not isinstance(mb, int)
        or mb < 1
        or (limit is not None and mb > limit)
    ):
        allowed = "1 or more" if limit is None else f"1 to {limit}"
        raise ValueError(
            f"disk_fill(mb={mb!r}) is not allowed; use an integer from {allowed} "
            f"(at most {DISK_SHARE:.0%} of the {free} MiB free under {where!r})"
            if free is not None
            else f"disk_fill(mb={mb!r}) is not allowed; use an integer from {allowed}"
        )


def fill_name() -> str:
    """A new name for a disk fill's file."""
    return f"pytest-chaos-fill-{uuid.uuid4().hex[:12]}.bin"


def _check_seconds(what: str, seconds: float) -> None:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 0 < seconds <= MAX_SECONDS
    ):
        raise ValueError(
            f"{what}(seconds={seconds!r}) is not allowed; use a number above 0 and at most "
            f"{MAX_SECONDS} (a day)"
        )


def _hog(
    log: FaultLog, supervisor: Supervisor, record: FaultRecord, commands: list[list[str]]
) -> Hog:
    processes: list[SupervisedProcess] = []
    if not record.dry_run:
        try:
            for command in commands:
                argv = [sys.executable, "-I", "-S", str(_HOG), *command]
                env = {**os.environ, procs.MARKER: procs.marker(record.kind)}
                processes.append(_spawn_piped(supervisor, argv, env, record.kind))
            for process in processes:
                _await_ready(record.kind, process)
        except BaseException:
            _end(processes)
            raise
        record.details["pids"] = [process.pid for process in processes]
    return Hog(record, log, processes)


def _spawn_piped(
    supervisor: Supervisor, argv: list[str], env: dict[str, str], kind: str
) -> SupervisedProcess:
    """Start ``argv`` with its output to a pipe that the returned process's ``stdout`` reads."""
    read, write = os.pipe()
    reader = os.fdopen(read, "rb")
    try:
        return supervisor.spawn(argv, stdout=write, env=env, reader=reader)
    except (OSError, SupervisorError) as error:
        reader.close()
        raise ServiceError(f"the {kind} could not be started: {error}") from None
    finally:
        os.close(write)


def _end(processes: list[SupervisedProcess]) -> None:
    """Kill the hog processes (each leads its own group) and reap them."""
    for process in processes:
        procs.signal_all(process.pid, None, signal.SIGKILL)
    for process in processes:
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _await_ready(kind: str, process: SupervisedProcess) -> None:
    """Wait for the hog's ``ready`` line; ServiceError with its output otherwise."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
    line = process.stdout.readline() if readable else b""
    if line.strip() != b"ready":
        try:
            process.wait(READY_TIMEOUT_S if readable else 0)  # it wrote an error: it is exiting
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        rest = process.stdout.read()
        output = (line + rest).decode(errors="replace").strip() or "no output"
        raise ServiceError(f"the {kind} did not start (exit code {process.returncode}): {output}")


def _allocate(file: Path, size: int) -> None:
    """Create ``file`` with ``size`` bytes of really allocated blocks: allocated at once
    where the platform and the file system can, else written block by block."""
    allocate = getattr(os, "posix_fallocate", None)  # macOS has none
    try:
        with file.open("wb") as out:
            try:
                if allocate is None:
                    raise OSError(errno.ENOSYS, "no posix_fallocate")
                allocate(out.fileno(), 0, size)
            except OSError as error:
                if error.errno not in _NO_FALLOCATE:
                    raise
                block = os.urandom(MB)
                for _ in range(size // MB):
                    out.write(block)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        raise ServiceError(f"disk_fill could not write {str(file)!r}: {error}") from None
