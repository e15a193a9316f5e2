"""Resource faults with real processes and files: each takes what it says, ends by itself
within its bound, ends early when asked or at teardown, and refuses unbounded requests."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_chaos._net.processes import wait_until
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.faults import FaultLog
from pytest_chaos.leftovers.supervisor import Supervisor
from pytest_chaos.services import ServiceError, ServiceManager
from pytest_chaos.services.resources import MAX_SECONDS, available_memory_mb

from ..scenarios import wait_for_exit
from .helpers import cpu_seconds, gone, resident_mb

linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")


@linux_only
def test_cpu_hog_keeps_cores_busy_then_ends_by_itself(service: ServiceManager) -> None:
    cores = min(2, os.cpu_count() or 1)
    started = time.monotonic()
    hog = service.cpu_hog(cores, seconds=1.5)
    assert len(hog.pids) == cores and hog.running and hog.active
    assert wait_until(lambda: all(cpu_seconds(pid) >= 0.3 for pid in hog.pids), 10)
    hog.wait(timeout=10)
    assert time.monotonic() - started >= 1.5
    assert all(gone(pid) for pid in hog.pids)
    assert hog.record.details == {"cores": cores, "seconds": 1.5, "pids": hog.pids}


@linux_only
def test_memory_hog_holds_memory_until_ended(service: ServiceManager) -> None:
    with service.memory_hog(64, seconds=30) as hog:
        (pid,) = hog.pids
        assert resident_mb(pid) >= 64
    assert gone(pid) and not hog.active
    assert [(f.kind, f.rolled_back_at is not None) for f in service.faults] == [
        ("memory_hog", True)
    ]


def test_disk_fill_allocates_a_file_and_removes_it(service: ServiceManager, tmp_path: Path) -> None:
    fill = service.disk_fill(tmp_path, 8)
    assert fill.file.parent == tmp_path and fill.file.name.startswith("pytest-chaos-fill-")
    assert fill.file.stat().st_size == 8 * 2**20
    assert fill.file.stat().st_blocks * 512 >= 8 * 2**20  # really allocated, not sparse
    assert fill.record.details == {"file": str(fill.file), "mb": 8}
    fill.end()
    assert not fill.file.exists() and not fill.active


def test_teardown_ends_every_resource_fault(tmp_path: Path) -> None:
    manager = ServiceManager(log=FaultLog(), seeds=TestSeeds(1, "t"), workdir=lambda: tmp_path)
    hog = manager.cpu_hog(1, seconds=60)
    memory = manager.memory_hog(16, seconds=60)
    fill = manager.disk_fill(tmp_path, 1)
    assert manager.close() == []
    assert not hog.running and not memory.running and not fill.file.exists()
    assert [f.kind for f in manager.faults] == ["cpu_hog", "memory_hog", "disk_fill"]
    assert all(f.rolled_back_at is not None for f in manager.faults)


def test_dry_run_records_resource_faults_without_applying_them(tmp_path: Path) -> None:
    manager = ServiceManager(
        log=FaultLog(dry_run=True), seeds=TestSeeds(1, "t"), workdir=lambda: tmp_path
    )
    hog = manager.cpu_hog(1, seconds=60)
    fill = manager.disk_fill(tmp_path, 1)
    assert hog.pids == [] and not fill.file.exists()
    assert [(f.kind, f.dry_run) for f in manager.faults] == [
        ("cpu_hog", True),
        ("disk_fill", True),
    ]
    assert manager.close() == []


def test_unbounded_requests_are_refused(service: ServiceManager, tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    with pytest.raises(
        ValueError, match=rf"cpu_hog\(cores=0\) is not allowed; use an integer from 1 to {cores}"
    ):
        service.cpu_hog(0, seconds=1)
    with pytest.raises(ValueError, match=rf"cpu_hog\(cores={cores + 1}\) is not allowed"):
        service.cpu_hog(cores + 1, seconds=1)
    for seconds in (0, -1, math.inf, math.nan, MAX_SECONDS + 1):
        with pytest.raises(
            ValueError,
            match=rf"cpu_hog\(seconds={seconds!r}\) is not allowed; use a number above 0",
        ):
            service.cpu_hog(1, seconds=seconds)
    with pytest.raises(ValueError, match=r"memory_hog\(mb=0\) is not allowed"):
        service.memory_hog(0, seconds=1)
    available = available_memory_mb()
    if available is not None:
        with pytest.raises(ValueError, match=r"at most 90% of the memory available now"):
            service.memory_hog(available, seconds=1)
    with pytest.raises(ValueError, match="not an existing directory"):
        service.disk_fill(tmp_path / "missing", 1)
    with pytest.raises(
        ValueError,
        match=r"disk_fill\(mb=\d+\) is not allowed; use an integer from 1 to \d+ \(at most 90% of the \d+ MiB free under",
    ):
        service.disk_fill(tmp_path, 2**40)
    assert service.faults == []


def test_a_hog_that_cannot_start_says_why(
    service: ServiceManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_chaos.services import resources

    monkeypatch.setattr(resources, "_HOG", Path("/no/such/hog.py"))
    with pytest.raises(
        ServiceError, match=r"the cpu_hog did not start \(exit code 2\): .*can't open file"
    ):
        service.cpu_hog(1, seconds=1)
    assert service.faults == []


def test_a_disk_fill_is_registered_before_its_first_byte(tmp_path: Path) -> None:
    supervisor = Supervisor(folder=tmp_path / "register")
    manager = ServiceManager(
        log=FaultLog(), seeds=TestSeeds(1, "t"), workdir=lambda: tmp_path, supervisor=supervisor
    )
    fills = tmp_path / "register" / "fills"
    try:
        with manager.disk_fill(tmp_path, 1) as fill:
            (entry,) = fills.iterdir()
            assert entry.name == fill.file.name + supervisor.identity.suffix
            assert entry.resolve() == fill.file
        assert list(fills.iterdir()) == [] and not fill.file.exists()
    finally:
        manager.close()
        supervisor.close()


#: A disk fill of 512 MiB written block by block (as where ``posix_fallocate`` does not
#: exist, as on macOS), and a thread that sends the process SIGNAL as soon as the file
#: holds bytes; it prints the supervisor's pid first.
INTERRUPTED_FILL = """
import os, signal, sys, threading, time
from pathlib import Path
from pytest_chaos.faults import FaultLog
from pytest_chaos.leftovers.supervisor import Supervisor
from pytest_chaos.leftovers.supervisor import Supervisor
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.services import ServiceManager

del os.posix_fallocate
folder = Path({folder!r})
supervisor = Supervisor(folder=folder / "register")
supervisor.start()
print(supervisor.pid, flush=True)
manager = ServiceManager(log=FaultLog(), seeds=TestSeeds(1, "t"), workdir=lambda: folder,
                         supervisor=supervisor)

def interrupt():
    while not any(f.stat().st_size for f in (folder / "fill").glob("pytest-chaos-fill-*")):
        time.sleep(0.001)
    os.kill(os.getpid(), signal.{signal})

threading.Thread(target=interrupt, daemon=True).start()
try:
    manager.disk_fill(folder / "fill", 512)
except KeyboardInterrupt:
    print("interrupted", flush=True)
manager.close()
supervisor.close()
"""


@linux_only
@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_an_interrupted_fill_leaves_no_partial_file(tmp_path: Path, sig: str) -> None:
    """Ctrl-C while the blocks are written: the partial file is removed at once. SIGKILL
    then: the supervisor removes it."""
    (tmp_path / "fill").mkdir()
    script = INTERRUPTED_FILL.format(folder=str(tmp_path), signal=sig)
    ended = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    supervisor, *rest = ended.stdout.split()
    if sig == "SIGINT":
        assert (ended.returncode, rest) == (0, ["interrupted"]), ended.stderr
    else:
        assert ended.returncode == -signal.SIGKILL, ended.stderr
    wait_for_exit(int(supervisor))
    assert list((tmp_path / "fill").iterdir()) == []
    assert list((tmp_path / "register" / "fills").iterdir()) == []
