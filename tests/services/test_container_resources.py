"""Resource faults inside a container, run for real through ``exec``: each takes what it
says (seen from the host and by the engine), ends by itself within its bound, ends early
when asked or at teardown, and refuses unbounded requests. Images need no tools: the
faults copy this machine's static busybox in.

Like ``test_container.py``, these skip without an engine (fail with
PYTEST_CHAOS_REQUIRE_CONTAINERS=1), one container test at a time on the machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos._net.processes import wait_until
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.faults import FaultLog
from pytest_chaos.services import (
    ContainerService,
    ServiceError,
    ServiceManager,
    container_resources,
)
from pytest_chaos.services.container_resources import HELPER

from ..containers import IMAGE, require_image
from .helpers import cpu_seconds, gone, resident_mb

INNER_TIMEOUT_S = 120
SLEEPER = ["sleep", "600"]


def sleeper(service: ServiceManager, image: str) -> ContainerService:
    return service.container("box", image, SLEEPER, stop_timeout=0)


def run(handle: ContainerService, *argv: str) -> str:
    """The output of the copied busybox's ``argv`` in the container."""
    assert handle.id is not None
    result = handle._container.exec_run([HELPER, *argv])
    return bytes(result.output).decode()


def tagged(handle: ContainerService, tag: str) -> list[str]:
    """The live (not zombie) processes of the container whose command line has ``tag``."""
    lines = run(handle, "ps", "-o", "stat,args").splitlines()[1:]
    return [line for line in lines if tag in line and not line.lstrip().startswith("Z")]


def memory_mb(engine: Any, handle: ContainerService) -> float:
    """The container's memory use as the engine counts it (its cgroup)."""
    stats = engine.containers.get(handle.id).stats(stream=False)
    return float(stats["memory_stats"]["usage"]) / 2**20


def test_cpu_hog_keeps_cores_busy(image: str, service: ServiceManager) -> None:
    """Each core's process burns CPU (however busy the machine: the wait is for CPU time,
    with a long hog ended once it is seen)."""
    handle = sleeper(service, image)
    cores = min(2, os.cpu_count() or 1)
    with handle.cpu_hog(cores, seconds=60) as hog:
        assert len(hog.pids) == cores and hog.running and hog.active
        # Podman runs the container's processes on this machine: the engine gives their pids
        assert wait_until(lambda: all(cpu_seconds(pid) >= 0.3 for pid in hog.pids), 60)
        assert len(tagged(handle, hog.record.details["tag"])) >= cores
    assert not hog.running and all(gone(pid) for pid in hog.pids)


def test_cpu_hog_ends_by_itself(image: str, service: ServiceManager) -> None:
    handle = sleeper(service, image)
    cores = min(2, os.cpu_count() or 1)
    started = time.monotonic()
    hog = handle.cpu_hog(cores, seconds=1.5)
    tag = hog.record.details["tag"]
    hog.wait(timeout=10)
    assert time.monotonic() - started >= 1.4
    assert not hog.running and all(gone(pid) for pid in hog.pids)
    assert wait_until(lambda: tagged(handle, tag) == [], 5)  # its timeout watchers too
    assert hog.record.target == "box"
    assert hog.record.details == {
        "cores": cores,
        "seconds": 1.5,
        "container": handle.short_id,
        "tag": tag,
        "pids": hog.pids,
    }


def test_memory_hog_holds_memory_until_ended(
    image: str, engine: Any, service: ServiceManager
) -> None:
    handle = sleeper(service, image)
    before = memory_mb(engine, handle)
    with handle.memory_hog(32, seconds=60) as hog:
        (pid,) = hog.pids
        assert resident_mb(pid) >= 32
        assert memory_mb(engine, handle) - before >= 30  # the engine sees it too
    assert not hog.running and not hog.active and gone(pid)
    assert tagged(handle, hog.record.details["tag"]) == []
    assert memory_mb(engine, handle) - before < 16
    assert [(f.kind, f.rolled_back_at is not None) for f in service.faults] == [
        ("memory_hog", True)
    ]


def test_memory_hog_ends_by_itself_leaving_no_process(image: str, service: ServiceManager) -> None:
    handle = sleeper(service, image)
    started = time.monotonic()
    hog = handle.memory_hog(16, seconds=1)
    hog.wait(timeout=10)
    assert 0.9 <= time.monotonic() - started < 5
    assert wait_until(lambda: tagged(handle, hog.record.details["tag"]) == [], 5)
    processes = run(handle, "ps", "-o", "stat,args").splitlines()[1:]
    assert not [p for p in processes if "sleep 1.000" in p and not p.lstrip().startswith("Z")]


def test_disk_fill_writes_a_file_and_removes_it(image: str, service: ServiceManager) -> None:
    handle = sleeper(service, image)
    fill = handle.disk_fill("/", 8)
    assert fill.file.startswith("/pytest-chaos-fill-") and fill.file.endswith(".bin")
    assert run(handle, "stat", "-c", "%s", fill.file).strip() == str(8 * 2**20)
    assert fill.record.details == {"file": fill.file, "mb": 8, "container": handle.short_id}
    fill.end()
    assert "No such file" in run(handle, "stat", fill.file) and not fill.active


def test_an_image_without_tools_gets_the_faults_too(image: str, service: ServiceManager) -> None:
    """The Toxiproxy image is one static binary: no shell, no ``timeout``, no ``dd``."""
    require_image(service._container_engine().client(), IMAGE)
    handle = service.container("toxiproxy", IMAGE, stop_timeout=0)
    with handle.cpu_hog(1, seconds=30) as hog:
        assert wait_until(lambda: cpu_seconds(hog.pids[0]) >= 0.2, 10)
    assert gone(hog.pids[0])
    with handle.disk_fill("/", 1) as fill:
        assert run(handle, "stat", "-c", "%s", fill.file).strip() == str(2**20)
    assert "No such file" in run(handle, "stat", fill.file)


def test_dry_run_records_without_copying_or_running(image: str) -> None:
    manager = ServiceManager(
        log=FaultLog(dry_run=True), seeds=TestSeeds(1, "t"), workdir=lambda: Path("unused")
    )
    try:
        handle = sleeper(manager, image)
        hog = handle.cpu_hog(1, seconds=60)
        memory = handle.memory_hog(16, seconds=60)
        fill = handle.disk_fill("/", 1)
        assert hog.pids == [] and not hog.running and not memory.running
        assert b"pytest-chaos" not in handle._container.exec_run(["ls", "-a", "/"]).output
        assert fill.file.startswith("/pytest-chaos-fill-")
        assert [(f.kind, f.target, f.dry_run) for f in manager.faults] == [
            ("cpu_hog", "box", True),
            ("memory_hog", "box", True),
            ("disk_fill", "box", True),
        ]
    finally:
        assert manager.close() == []


def test_unbounded_requests_are_refused(image: str, service: ServiceManager) -> None:
    handle = sleeper(service, image)
    cores = os.cpu_count() or 1
    with pytest.raises(ValueError, match=rf"cpu_hog\(cores={cores + 1}\) is not allowed"):
        handle.cpu_hog(cores + 1, seconds=1)
    with pytest.raises(ValueError, match=r"cpu_hog\(seconds=0\) is not allowed"):
        handle.cpu_hog(1, seconds=0)
    with pytest.raises(ValueError, match=r"memory_hog\(mb=0\) is not allowed"):
        handle.memory_hog(0, seconds=1)
    with pytest.raises(ValueError, match="use an absolute path inside the container"):
        handle.disk_fill("tmp", 1)
    with pytest.raises(ValueError, match="not an existing directory in the container"):
        handle.disk_fill("/no/such/dir", 1)
    with pytest.raises(
        ValueError, match=r"disk_fill\(mb=\d+\) is not allowed; use an integer from 1 to \d+"
    ):
        handle.disk_fill("/", 2**40)
    assert service.faults == []


def test_a_limited_container_bounds_the_memory_hog(image: str, service: ServiceManager) -> None:
    handle = service.container("small", image, SLEEPER, mem_limit="64m", stop_timeout=0)
    with pytest.raises(ValueError, match=r"memory_hog\(mb=64\) is not allowed; use an integer"):
        handle.memory_hog(64, seconds=1)


def test_a_stopped_container_takes_no_resource_fault(image: str, service: ServiceManager) -> None:
    handle = sleeper(service, image)
    handle.stop(timeout=0)
    with pytest.raises(ServiceError, match=r"service 'box' is exited.*: resource faults need it"):
        handle.cpu_hog(1, seconds=1)


def test_no_static_busybox_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(container_resources, "BUSYBOX", tmp_path / "none")
    with pytest.raises(ServiceError, match=r"busybox-static.*no busybox on this machine"):
        container_resources.find_busybox()
    dynamic = tmp_path / "busybox"
    dynamic.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 500 + b"/lib64/ld-linux-x86-64.so.2")
    dynamic.chmod(0o755)
    with pytest.raises(ServiceError, match=r"busybox is dynamically linked"):
        container_resources.find_busybox()


FAILING_TEST = """
from pathlib import Path


def test_fails(service):
    box = service.container("box", {image!r}, ["sleep", "600"], stop_timeout=0)
    box.cpu_hog(1, seconds=60)
    box.memory_hog(16, seconds=60)
    box.disk_fill("/", 1)
    assert False, "the check failed"
"""

ROLLBACK_PROBE = """
import json

import docker


def pytest_chaos_fault_rolled_back(item, fault):
    # the faults are undone before the container is removed: look inside it now
    client = docker.from_env()
    try:
        container = client.containers.get(fault.details["container"])
        argv = ["/.pytest-chaos/busybox", "ps", "-o", "stat,args"]
        if fault.kind == "disk_fill":
            argv = ["/.pytest-chaos/busybox", "ls", "-a", "/"]
        seen = container.exec_run(argv).output.decode()
    finally:
        client.close()
    with open("rolled_back.jsonl", "a") as out:
        out.write(json.dumps([fault.kind, fault.details, seen]) + "\\n")
"""


@pytest.mark.usefixtures("isolated_env")
def test_a_failing_test_has_its_resource_faults_undone(
    pytester: pytest.Pytester, image: str
) -> None:
    pytester.makeconftest(ROLLBACK_PROBE)
    pytester.makepyfile(test_inner=FAILING_TEST.format(image=image))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", timeout=INNER_TIMEOUT_S
    )
    result.assert_outcomes(failed=1)
    lines = (pytester.path / "rolled_back.jsonl").read_text().splitlines()
    undone = [json.loads(line) for line in lines]
    assert [kind for kind, _, _ in undone] == ["disk_fill", "memory_hog", "cpu_hog"]
    for kind, details, seen in undone:
        if kind == "disk_fill":
            assert Path(details["file"]).name not in seen, seen
        else:
            live = [line for line in seen.splitlines() if not line.lstrip().startswith("Z")]
            assert not [line for line in live if details["tag"] in line], seen


def test_the_memory_hogs_shell_ends_cleanly_on_term_in_every_state(tmp_path: Path) -> None:
    """The hog's TERM trap (busybox ``timeout`` sends TERM at the hard bound) ends the shell
    with no error whether its sleep has started or not: here TERM arrives while the memory
    is still being filled, before any background job exists. The script runs in this
    machine's busybox sh, its ``head`` held back by a FIFO until TERM has been sent."""
    import shutil
    import signal
    import subprocess

    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).is_file():
        pytest.skip("no busybox on this machine (Debian: apt-get install busybox-static)")
    gate, started = tmp_path / "gate", tmp_path / "started"
    os.mkfifo(gate)
    fake = tmp_path / "fake-busybox"  # `head` waits on the gate; everything else is busybox
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = head ]; then : > {started}; cat {gate}; exit 0; fi\n'
        f'exec {busybox} "$@"\n'
    )
    fake.chmod(0o755)
    shell = subprocess.Popen(
        [busybox, "sh", "-c", container_resources._MEMORY, "tag", str(fake), "1024", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_until(started.exists, 30), "the hog did not start filling its memory"
        shell.send_signal(signal.SIGTERM)
        with open(gate, "w") as release:  # the trap runs once the filling returns
            release.write("x")
        out, err = shell.communicate(timeout=30)
    finally:
        shell.kill()
        shell.wait()
    assert (shell.returncode, err.decode(), out.decode()) == (0, "", "")
