"""What the ``service`` fixture gives a test: it starts services, picks targets, applies
resource faults, and at teardown undoes every fault and stops every process it started."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, final

from pytest_chaos._net import processes as procs
from pytest_chaos.core.faultlog import FaultLog, FaultRecord
from pytest_chaos.core.seeding import TestSeeds
from pytest_chaos.leftovers.supervisor import Supervisor
from pytest_chaos.services import blast, resources
from pytest_chaos.services import ports as ports_module
from pytest_chaos.services.errors import ServiceError
from pytest_chaos.services.lifecycle import Service
from pytest_chaos.services.process import ProcessService
from pytest_chaos.services.ready import Ready, probes_of

if TYPE_CHECKING:
    from pytest_chaos._net.containers import ContainerEngine
    from pytest_chaos.services.container import ContainerService

T = TypeVar("T")
SERVICE_LABEL = "io.pytest-chaos.service"
"""The label that names a container's service."""
REPORT_LOG_LINES = 50
"""How many of each service's last log lines a failing test's report shows."""

Arg = str | int | os.PathLike[str]


@final
class ServiceManager:
    """The services of one test, and the faults applied to them and to this machine."""

    def __init__(
        self,
        *,
        log: FaultLog,
        seeds: TestSeeds,
        workdir: Callable[[], Path],
        engine: Callable[[], ContainerEngine] | None = None,
        supervisor: Supervisor | None = None,
        on_started: Callable[[Service], None] | None = None,
    ) -> None:
        self._log = log
        self._on_started = on_started
        # the session's, which ends this test's processes if the session dies; without
        # one, a private one that close() stops
        self._supervisor = supervisor or Supervisor()
        self._own_supervisor = supervisor is None
        self._seeds = seeds
        self._picks = 0
        self._workdir = workdir
        self._engine = engine  # the session's; without one, a private one on first use
        self._own_engine: ContainerEngine | None = None
        self._folder: Path | None = None  # made on first use: a test with no service has none
        self._services: dict[str, Service] = {}
        self._ports_taken: set[int] = set()

    @property
    def faults(self) -> list[FaultRecord]:
        """The faults applied through this fixture, oldest first."""
        return self._log.faults

    @property
    def dry_run(self) -> bool:
        """Whether faults are only recorded (``--chaos-dry-run``)."""
        return self._log.dry_run

    def __getitem__(self, name: str) -> Service:
        try:
            return self._services[name]
        except KeyError:
            known = ", ".join(self._services) or "none yet"
            raise KeyError(f"no service named {name!r}; this test's services: {known}") from None

    def __iter__(self) -> Iterator[Service]:
        return iter(list(self._services.values()))

    def __len__(self) -> int:
        return len(self._services)

    # -- starting services -----------------------------------------------------------------

    def process(
        self,
        name: str,
        argv: Sequence[Arg],
        *,
        env: Mapping[str, Arg] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready: Ready = None,
        ports: Mapping[str, int] | None = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        start: bool = True,
    ) -> ProcessService:
        """Start ``argv`` (a list, never a shell string) as the service ``name`` and wait
        until ``ready`` passes. ``{port}`` and ``{port:NAME}`` in ``argv`` and in ``env``
        values become free loopback ports; ``ports`` fixes some (``{"port": 6379}``; 0 for
        a free one). ``env`` is added to this process's environment; ``cwd`` defaults to
        the current directory. The output goes to ``output.log`` in a fresh directory
        under pytest's temporary directory. With ``start=False`` the ports are chosen
        but the process waits for ``start()``."""
        __tracebackhide__ = True
        self._check_name(name)
        args = _arguments(name, argv)
        environment = {key: _text(f"env[{key!r}]", value) for key, value in (env or {}).items()}
        fixed = ports_module.check_fixed(ports or {})
        probes = probes_of(ready)
        directory = Path.cwd() if cwd is None else Path(cwd)
        if not directory.is_dir():
            raise ValueError(f"service {name!r}: cwd={str(cwd)!r} is not an existing directory")
        _check_timeouts(name, ready_timeout=ready_timeout, stop_timeout=stop_timeout)
        if self._folder is None:
            self._folder = self._workdir()
        folder = _new_folder(self._folder, name)
        handle = ProcessService(
            name,
            args,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **environment},
            cwd=directory,
            ports=ports_module.allocate(_port_names(args, environment), fixed, self._ports_taken),
            probes=probes,
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
            log_path=folder / "output.log",
            faults=self._log,
            marker=procs.marker(name),
            supervisor=self._supervisor,
        )
        self._services[name] = handle
        if start:
            handle.start()
            self._started(handle)
        return handle

    def container(
        self,
        name: str,
        image: str,
        command: Sequence[Arg] | None = None,
        *,
        env: Mapping[str, Arg] | None = None,
        ports: Iterable[int | str] | Mapping[int | str, int | None] | int | str = (),
        ready: Ready = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        start: bool = True,
        **options: Any,
    ) -> ContainerService:
        """Run ``image`` as the service ``name``, through the Docker SDK on the engine that
        $DOCKER_HOST names (Docker, or Podman's Docker API), and wait until ``ready``
        passes. ``command`` replaces the image's command (a list, never a shell string).
        ``ports`` are container ports (``[8080]``, ``["8080/tcp", "53/udp"]``), published
        on 127.0.0.1 only, each on a free host port (or, as a mapping, on the host port
        given: ``{8080: 18080}``; None for a free one); ``handle.ports`` maps
        ``"8080/tcp"`` to its host port and ``handle.port`` is the first one. Other keyword
        arguments go to the SDK's ``containers.create`` (``entrypoint=``, ``volumes=``...).
        The container carries this session's labels, and is removed at teardown."""
        __tracebackhide__ = True
        from pytest_chaos._net.containers import EngineError
        from pytest_chaos.services.container import ContainerService, port_key

        self._check_name(name)
        if not isinstance(image, str) or not image.strip():
            raise ValueError(f"service {name!r}: image={image!r}; use an image name")
        args = None if command is None else _arguments(name, command)
        environment = {key: _text(f"env[{key!r}]", value) for key, value in (env or {}).items()}
        fixed = _container_ports(name, ports, port_key)
        probes = probes_of(ready)
        _check_timeouts(name, ready_timeout=ready_timeout, stop_timeout=stop_timeout)
        try:
            engine = self._container_engine()
            client = engine.client()
        except EngineError as error:
            raise ServiceError(f"service {name!r}: {error}") from None
        handle = ContainerService(
            name,
            image,
            command=args,
            env=environment,
            ports=ports_module.allocate([], fixed, self._ports_taken),
            probes=probes,
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
            faults=self._log,
            client=client,
            labels={**engine.labels(), SERVICE_LABEL: name},
            options=options,
        )
        self._services[name] = handle
        if start:
            handle.start()
            self._started(handle)
        return handle

    def _started(self, handle: Service) -> None:
        if self._on_started is not None:
            self._on_started(handle)

    def _container_engine(self) -> ContainerEngine:
        if self._engine is not None:
            return self._engine()
        if self._own_engine is None:
            import uuid

            from pytest_chaos._net.containers import ContainerEngine

            self._own_engine = ContainerEngine(uuid.uuid4().hex[:12])
        return self._own_engine

    # -- blast radius ----------------------------------------------------------------------

    def pick(
        self, instances: Iterable[T], *, count: int | None = None, percent: float | None = None
    ) -> list[T]:
        """Choose which instances a fault hits: ``count`` of them, or ``percent`` % rounded
        up; one when neither is given. The n-th pick of a test draws from a stream the
        seed, the test and n alone fix, so a replay (same ``--chaos-seed``) chooses the
        same instances."""
        self._picks += 1
        rng = self._seeds.decision("pick", self._picks)
        return blast.pick(rng, instances, count=count, percent=percent)

    # -- resource faults on this machine ---------------------------------------------------

    def cpu_hog(self, cores: int = 1, *, seconds: float) -> resources.Hog:
        """Keep ``cores`` cores busy for ``seconds`` seconds (or until ended)."""
        return resources.cpu_hog(self._log, self._supervisor, cores, seconds=seconds)

    def memory_hog(self, mb: int, *, seconds: float) -> resources.Hog:
        """Hold ``mb`` MiB of memory for ``seconds`` seconds (or until ended)."""
        return resources.memory_hog(self._log, self._supervisor, mb, seconds=seconds)

    def disk_fill(self, path: str | os.PathLike[str], mb: int) -> resources.DiskFill:
        """Fill ``mb`` MiB of the file system under the directory ``path`` with a file
        that is removed when the fault ends (at teardown at the latest)."""
        return resources.disk_fill(self._log, self._supervisor, path, mb)

    # -- teardown and reports --------------------------------------------------------------

    def close(self) -> list[BaseException]:
        """Undo every fault (newest first), then stop every service (last started first)
        and check that none left a process behind. Returns the errors met on the way.

        Interrupted (a second Ctrl-C, a timeout during teardown), it kills every process
        of its services at once before the interruption goes on."""
        try:
            errors = self._log.undo()
            for handle in reversed(list(self._services.values())):
                try:
                    handle.close()
                except Exception as error:
                    errors.append(error)
        except BaseException:
            self._kill_processes()
            raise
        finally:
            if self._own_engine is not None:
                self._own_engine.close()
            if self._own_supervisor:
                self._supervisor.close()
        return errors

    def _kill_processes(self) -> None:
        for handle in self._services.values():
            if isinstance(handle, ProcessService):
                handle.kill_tree()

    def report_sections(self) -> list[tuple[str, str]]:
        """One report section per service: where its log is, and the log's last lines."""
        sections = []
        for handle in self._services.values():
            lines = handle.logs(REPORT_LOG_LINES) or "(no output)"
            header = f"{handle.log_location} ({handle.state}), last {REPORT_LOG_LINES} lines:"
            sections.append((f"service {handle.name} log", f"{header}\n{lines}"))
        return sections

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"service name {name!r} is not allowed; use a non-empty string")
        if name in self._services:
            raise ValueError(f"this test already has a service named {name!r}; names are unique")


def _check_timeouts(name: str, **timeouts: float) -> None:
    for what, seconds in timeouts.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise ValueError(
                f"service {name!r}: {what}={seconds!r}; use a number of seconds, 0 or more"
            )


def _container_ports(
    name: str,
    ports: Iterable[int | str] | Mapping[int | str, int | None] | int | str,
    key: Callable[[int | str], str],
) -> dict[str, int]:
    """``ports=`` of a container as ``{"8080/tcp": host port, 0 for a free one}``."""
    if isinstance(ports, int | str):
        ports = [ports]
    given = dict(ports) if isinstance(ports, Mapping) else dict.fromkeys(ports)
    chosen = {}
    for inside, outside in given.items():
        if outside is None:
            outside = 0
        if isinstance(outside, bool) or not isinstance(outside, int) or not 0 <= outside <= 65535:
            raise ValueError(
                f"service {name!r}: ports[{inside!r}]={outside!r} is not allowed; use a host "
                "port from 1 to 65535, or None (or 0) for a free one"
            )
        chosen[key(inside)] = outside
    return chosen


def _arguments(name: str, argv: Sequence[Arg]) -> list[str]:
    if isinstance(argv, str):
        raise TypeError(
            f"service {name!r}: argv must be a list of arguments, not a string (it is never "
            f"split by a shell); write {shlex.split(argv)!r} instead of {argv!r}"
        )
    if isinstance(argv, bytes) or not isinstance(argv, Sequence) or not argv:
        raise TypeError(f"service {name!r}: argv={argv!r}: expected a non-empty list of arguments")
    return [_text(f"argv[{index}]", arg) for index, arg in enumerate(argv)]


def _port_names(args: list[str], env: Mapping[str, str]) -> list[str]:
    """The port names the placeholders of ``args`` and of ``env``'s values ask for."""
    places = [(f"argv[{index}]", arg) for index, arg in enumerate(args)]
    places += [(f"env[{key!r}]", value) for key, value in env.items()]
    return [name for where, text in places for name in ports_module.names_in(text, where)]


def _text(where: str, value: Arg) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | os.PathLike):
        raise TypeError(f"{where}={value!r}: expected a string (or a number or a path)")
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _new_folder(parent: Path, name: str) -> Path:
    """A new folder for the service ``name`` under ``parent``, named after it."""
    base = re.sub(r"[^\w.-]", "_", name)[:50]
    for number in range(1, 1000):
        folder = parent / (base if number == 1 else f"{base}-{number}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise ServiceError(f"cannot make a folder for service {name!r} under {parent}")


__all__ = ["ServiceError", "ServiceManager"]
