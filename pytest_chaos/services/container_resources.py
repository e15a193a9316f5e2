"""Resource faults inside a container, each bounded and undone: a CPU hog, a memory hog and
a disk fill, run through ``exec`` by a statically linked busybox that is copied into the
container first (``/.pytest-chaos/busybox``), so that an image needs no shell or tools.

Every hog runs under busybox ``timeout`` inside the container, so it ends after its seconds
even if the test process dies; ending it earlier kills its processes (found by a tag in
their command line) with another ``exec``. The checks are those of the hogs on this machine
(``resources``).
"""

from __future__ import annotations

import io
import math
import shutil
import tarfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, final

from pytest_chaos.core.faultlog import ActiveFault, FaultLog, FaultRecord
from pytest_chaos.services import resources
from pytest_chaos.services.errors import ServiceError


class ContainerService(Protocol):
    """What the resource faults use of a container service
    (:class:`pytest_chaos.services.container.ContainerService`): its identity and state, the
    engine's client, the docker module, and where the busybox helper was copied."""

    _client: Any
    _container: Any
    _helper_in: str | None

    @property
    def name(self) -> str: ...
    @property
    def short_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def _docker(self) -> Any: ...
    def _engine_call(
        self, what: str, action: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any: ...


HELPER_DIR = ".pytest-chaos"
HELPER = f"/{HELPER_DIR}/busybox"
"""Where the busybox that runs the faults is copied inside the container."""
BUSYBOX = Path("/bin/busybox")
"""Where to look for busybox when it is not on $PATH."""
BUSYBOX_HINT = "a statically linked busybox (Debian: apt-get install busybox-static)"
GONE_TIMEOUT_S = 10.0
"""How long killed hog processes may take to be seen as gone."""
_POLL_S = 0.05
# ``sh -c SCRIPT TAG HELPER ARGS...``: $0 is the tag that marks the hog's processes, $1 the
# busybox. A ``sleep`` times each hog once its load is in place (busybox ``timeout`` counts
# whole seconds only: it is the hard bound, a second later, and allows a memory hog
# BUILD_ALLOWANCE_S to fill its memory); on the SIGTERM of ``timeout`` the shell kills its
# sleep if it has started one, and exits.
_UNTIL_TERM = """trap '[ -z "$!" ] || kill $! 2>/dev/null; exit 0' TERM; """
BUILD_ALLOWANCE_S = 60
"""How long a memory hog may take to fill its memory before its time starts."""
# busy-loop while the sleep of $2 seconds runs
_CPU = _UNTIL_TERM + '"$1" sleep "$2" & echo ready; while kill -0 $! 2>/dev/null; do :; done'
# hold a shell variable of $2 bytes for $3 seconds
_MEMORY = _UNTIL_TERM + (
    'x=$("$1" head -c "$2" /dev/zero | "$1" tr "\\0" a) && echo ready && '
    '{ "$1" sleep "$3" & wait; }; x='
)
_DIRECTORY = '[ -d "$2" ] || { echo "not an existing directory"; exit 3; }; "$1" df -Pk "$2"'
# SIGKILL to each tagged process and to its process group (an exec'd process leads one,
# with its children); "$2" is a pattern that matches the tag but not this command line
_KILL = (
    'for d in /proc/[0-9]*; do "$1" grep -q "$2" "$d/cmdline" 2>/dev/null || continue; '
    'p=${d#/proc/}; kill -9 -"$p" "$p" 2>/dev/null; done; :'
)


def find_busybox() -> Path:
    """This machine's statically linked busybox, or ServiceError saying what is missing."""
    found = shutil.which("busybox") or (str(BUSYBOX) if BUSYBOX.is_file() else None)
    if found is None:
        raise ServiceError(
            f"resource faults in a container copy {BUSYBOX_HINT} into it; there is no "
            f"busybox on this machine (not on $PATH, no {BUSYBOX})"
        )
    head = Path(found).read_bytes()[:4096]
    if not head.startswith(b"\x7fELF") or b"/ld-linux" in head or b"/ld-musl" in head:
        raise ServiceError(
            f"resource faults in a container copy {BUSYBOX_HINT} into it; {found} is "
            "dynamically linked (or not an executable), so it would not run there"
        )
    return Path(found)


@final
class ContainerHog(ActiveFault):
    """CPU or memory load held by processes inside a container; it ends after its seconds,
    or earlier by :meth:`end`, on leaving its ``with`` block, or at teardown."""

    def __init__(
        self,
        record: FaultRecord,
        log: FaultLog,
        service: ContainerService,
        execs: dict[str, int],
    ) -> None:
        self.service = service
        self.execs = list(execs)
        self.pids = list(execs.values())
        """The pids of its processes on the engine's host, as the engine reported them."""
        super().__init__(record, log.record(record, self._stop))

    @property
    def running(self) -> bool:
        """Whether some of its processes still run (the load is on)."""
        return any(self._inspect(exec_id).get("Running") for exec_id in self.execs)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the load ends by itself (ServiceError after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            if deadline is not None and time.monotonic() > deadline:
                raise ServiceError(f"the {self.record.kind} still runs after {timeout:g} s")
            time.sleep(_POLL_S)

    def _inspect(self, exec_id: str) -> dict[str, Any]:
        try:
            return dict(self.service._client.api.exec_inspect(exec_id))
        except self.service._docker.errors.NotFound:
            return {}  # the container (and its exec sessions) is gone

    def _stop(self) -> None:
        if self.service.status == "running":
            _kill_tagged(self.service, str(self.record.details["tag"]))
            self.wait(GONE_TIMEOUT_S)


@final
class ContainerDiskFill(ActiveFault):
    """A file of ``mb`` MiB in a directory of a container, removed when the fault ends."""

    def __init__(
        self, record: FaultRecord, log: FaultLog, service: ContainerService, file: str
    ) -> None:
        self.service = service
        self.file = file
        super().__init__(record, log.record(record, self._remove))

    def _remove(self) -> None:
        # in a stopped container nothing runs: the file goes with it at teardown
        if self.service.status == "running":
            _run(self.service, "remove the disk fill", ["rm", "-f", self.file])


def cpu_hog(log: FaultLog, service: ContainerService, cores: int, seconds: float) -> ContainerHog:
    resources.check_cpu_hog(cores, seconds)
    record = _record(log, service, "cpu_hog", {"cores": cores, "seconds": seconds})
    return _hog(log, service, record, [[_CPU, HELPER, _seconds(seconds)]] * cores, allowance=0)


def memory_hog(log: FaultLog, service: ContainerService, mb: int, seconds: float) -> ContainerHog:
    resources.check_memory_hog(mb, seconds, _memory_limit_mb(service))
    record = _record(log, service, "memory_hog", {"mb": mb, "seconds": seconds})
    script = [_MEMORY, HELPER, str(mb * resources.MB), _seconds(seconds)]
    return _hog(log, service, record, [script], allowance=BUILD_ALLOWANCE_S)


def disk_fill(log: FaultLog, service: ContainerService, path: str, mb: int) -> ContainerDiskFill:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"disk_fill(path={path!r}): use an absolute path inside the container")
    directory = path.rstrip("/") or "/"
    file = f"{directory.rstrip('/')}/{resources.fill_name()}"
    if log.dry_run:  # nothing is copied or run: the free space is not known
        resources.check_disk_fill(mb, None, directory)
    else:
        code, out = _run_code(service, ["sh", "-c", _DIRECTORY, "", HELPER, directory])
        if code == 3:
            raise ValueError(
                f"disk_fill(path={path!r}): not an existing directory in the container"
            )
        try:
            free = int(out.splitlines()[-1].split()[3]) // 1024
        except (IndexError, ValueError):
            raise ServiceError(
                f"disk_fill could not read the free space under {path!r}: {out}"
            ) from None
        resources.check_disk_fill(mb, free, directory)
    record = _record(log, service, "disk_fill", {"file": file, "mb": mb})
    if not record.dry_run:
        dd = ["dd", "if=/dev/zero", f"of={file}", "bs=1048576", f"count={mb}", "conv=fsync"]
        code, out = _run_code(service, dd)
        if code != 0:
            _run_code(service, ["rm", "-f", file])
            raise ServiceError(f"disk_fill could not write {file!r} in {service.name!r}: {out}")
    return ContainerDiskFill(record, log, service, file)


def _record(
    log: FaultLog, service: ContainerService, kind: str, details: dict[str, Any]
) -> FaultRecord:
    details = {**details, "container": service.short_id}
    return FaultRecord(kind, service.name, details, dry_run=log.dry_run)


def _hog(
    log: FaultLog,
    service: ContainerService,
    record: FaultRecord,
    scripts: list[list[str]],
    allowance: int,
) -> ContainerHog:
    """Start each shell script (with its arguments) as ``busybox timeout BOUND busybox sh
    -c SCRIPT TAG ARGS...``, all with one new tag, and wait for each to say ``ready``.
    BOUND is the hog's seconds, a second more, and ``allowance`` seconds to put its load in
    place."""
    tag = f"pytest-chaos-{record.kind}-{uuid.uuid4().hex[:12]}"
    record.details["tag"] = tag
    execs: dict[str, int] = {}  # exec id: host pid
    if not record.dry_run:
        bound = str(math.ceil(record.details["seconds"]) + 1 + allowance)
        try:
            for script, *args in scripts:
                argv = [HELPER, "timeout", bound, HELPER, "sh", "-c", script, tag, *args]
                execs.update([_start_ready(service, record.kind, argv)])
        except BaseException:
            if service.status == "running":
                _kill_tagged(service, tag)
            raise
    hog = ContainerHog(record, log, service, execs)
    if execs:
        record.details["pids"] = hog.pids
    return hog


def _start_ready(service: ContainerService, kind: str, argv: list[str]) -> tuple[str, int]:
    """Start ``argv`` in the container; once it printed ``ready``, its exec id and its pid
    on the engine's host."""
    api = service._client.api
    container = _container(service)
    created = service._engine_call(f"start the {kind}", api.exec_create, container.id, argv)
    exec_id = str(created["Id"])
    output = b""
    stream = service._engine_call(f"start the {kind}", api.exec_start, exec_id, stream=True)
    try:
        for chunk in stream:
            output += chunk
            if b"ready\n" in output:
                return exec_id, int(api.exec_inspect(exec_id).get("Pid") or 0)
    finally:
        stream.close()  # the process goes on; it writes nothing more
    code = api.exec_inspect(exec_id).get("ExitCode")
    text = output.decode(errors="replace").strip() or "no output"
    raise ServiceError(f"the {kind} in {service.name!r} did not start (exit code {code}): {text}")


def _kill_tagged(service: ContainerService, tag: str) -> None:
    pattern = f"{tag[:-1]}[{tag[-1]}]"  # matches the tag, not this command line
    _run(service, "end the hog", ["sh", "-c", _KILL, "", HELPER, pattern])


def _run(service: ContainerService, what: str, argv: Sequence[str]) -> str:
    code, out = _run_code(service, argv)
    if code != 0:
        raise ServiceError(f"service {service.name!r}: cannot {what} (exit code {code}): {out}")
    return out


def _run_code(service: ContainerService, argv: Sequence[str]) -> tuple[int, str]:
    """Run busybox ``argv`` in the container to its end: its exit code and output."""
    result = service._engine_call(
        f"run {argv[0]} in the container", _container(service).exec_run, [HELPER, *argv]
    )
    return int(result.exit_code), bytes(result.output).decode(errors="replace").strip()


def _container(service: ContainerService) -> Any:
    """The running container, with the busybox copied in (once per container)."""
    container = service._container
    if container is None or service.status != "running":
        raise ServiceError(
            f"service {service.name!r} is {service.state}: resource faults need it running"
        )
    if service._helper_in != container.id:
        busybox = find_busybox()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            folder = tarfile.TarInfo(HELPER_DIR)
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder)
            tar.add(busybox, arcname=HELPER.lstrip("/"))
        copied = service._engine_call(
            f"copy {busybox} into the container", container.put_archive, "/", archive.getvalue()
        )
        if not copied:
            raise ServiceError(
                f"service {service.name!r}: cannot copy {busybox} into the container"
            )
        service._helper_in = container.id
    return container


def _memory_limit_mb(service: ContainerService) -> int | None:
    """The memory it may use: this machine's available memory, or its limit if lower."""
    limits = [resources.available_memory_mb()]
    if service._container is not None:
        limit = int(service._container.attrs.get("HostConfig", {}).get("Memory") or 0)
        limits.append(limit // resources.MB if limit > 0 else None)
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None


def _seconds(seconds: float) -> str:
    """``seconds`` for busybox ``sleep``, to the millisecond."""
    return f"{seconds:.3f}"
