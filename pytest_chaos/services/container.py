"""A container under test, run through the Docker SDK on the engine of the environment
(Docker, or Podman's Docker API through $DOCKER_HOST): its ports published on 127.0.0.1
only, on free host ports kept for its whole life (restarts and re-creation included),
broken on purpose (killed, stopped, paused, restarted, removed), and removed at teardown.

It carries the session's labels (``pytest_chaos._net.containers``), so that a later session
removes it if this one dies without teardown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, final

from pytest_chaos.core.faultlog import ActiveFault, FaultLog
from pytest_chaos.services import container_resources
from pytest_chaos.services.container_resources import ContainerDiskFill, ContainerHog
from pytest_chaos.services.errors import ServiceError
from pytest_chaos.services.lifecycle import Service
from pytest_chaos.steady.probes import Probe

GONE_TIMEOUT_S = 10.0
"""How long a killed container may take to be seen as exited."""
_POLL_S = 0.02


def port_key(port: int | str) -> str:
    """A container port as the engine names it: ``8080`` -> ``8080/tcp``."""
    text = str(port)
    number, _, protocol = text.partition("/")
    if not number.isdigit() or not 0 < int(number) <= 65535 or protocol not in ("", "tcp", "udp"):
        raise ValueError(
            f"container port {port!r} is not allowed; use a number from 1 to 65535, "
            "optionally with /tcp or /udp (8080, '8080/tcp', '53/udp')"
        )
    return f"{int(number)}/{protocol or 'tcp'}"


@final
class ContainerService(Service):
    """A service run as a container; made by ``service.container(...)``."""

    kind = "container"
    _no_port_hint = "publish one with ports=[CONTAINER_PORT]"

    def __init__(
        self,
        name: str,
        image: str,
        *,
        command: Sequence[str] | None,
        env: Mapping[str, str],
        ports: Mapping[str, int],
        probes: Sequence[Probe],
        ready_timeout: float,
        stop_timeout: float,
        faults: FaultLog,
        client: Any,
        labels: Mapping[str, str],
        options: Mapping[str, Any],
    ) -> None:
        super().__init__(
            name,
            ports=ports,
            probes=probes,
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
            faults=faults,
        )
        self.image = image
        self.command = None if command is None else list(command)
        self.env = dict(env)
        self.labels = dict(labels)
        self.options = dict(options)
        self._client = client
        self._container: Any = None
        self._log_offset = 0
        self._earlier_logs = b""  # of the containers that remove() took away
        self._removed = False
        self._helper_in: str | None = None  # the container the busybox was copied into

    # -- what it is doing ------------------------------------------------------------------

    @property
    def id(self) -> str | None:
        """The engine's id of the current container; None before it is created and after
        :meth:`remove`."""
        return None if self._container is None else str(self._container.id)

    @property
    def short_id(self) -> str | None:
        return None if self._container is None else str(self._container.short_id)

    @property
    def status(self) -> str:
        """The engine's word for it (``running``, ``paused``, ``exited``...), or ``removed``
        / ``not created``."""
        if self._container is None:
            return "removed" if self._removed else "not created"
        try:
            self._container.reload()
        except self._docker.errors.NotFound:
            return "removed"
        return str(self._container.status)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")

    @property
    def state(self) -> str:
        status = self.status
        if status in ("exited", "dead"):
            status += f" with code {self._exit_code()}"
        return status

    @property
    def log_location(self) -> str:
        return f"container {self.short_id or f'({self.status})'} of {self.image}"

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of its output (stdout and stderr, every run so far)."""
        text = (self._earlier_logs + self._read_logs()).decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""

    def output_since_start(self) -> str:
        """Everything it wrote since it last started."""
        return self._read_logs()[self._log_offset :].decode(errors="replace")

    # -- faults (kill, stop, pause, resume, restart: Service) ------------------------------

    def unpause(self) -> None:
        """End a pause (the engine's word for :meth:`resume`)."""
        self.resume()

    def remove(self) -> ActiveFault:
        """Remove the container (``docker rm -f``): it is gone, with its file system.
        Lasts until :meth:`start` (or ``end()``, or the ``with`` block's end), which
        creates it anew from the same image, on the same host ports."""
        return self._take_down("remove", {}, self._remove)

    # -- resource faults inside it --------------------------------------------------------

    def cpu_hog(self, cores: int = 1, *, seconds: float) -> ContainerHog:
        """Keep ``cores`` cores busy inside the container for ``seconds`` seconds (one
        busy-looping process per core, run through ``exec``)."""
        return container_resources.cpu_hog(self._faults, self, cores, seconds)

    def memory_hog(self, mb: int, *, seconds: float) -> ContainerHog:
        """Hold ``mb`` MiB of memory inside the container for ``seconds`` seconds; returns
        once it is held."""
        return container_resources.memory_hog(self._faults, self, mb, seconds)

    def disk_fill(self, path: str, mb: int) -> ContainerDiskFill:
        """Write a file of ``mb`` MiB in the directory ``path`` of the container; it is
        removed when the fault ends (at teardown at the latest)."""
        return container_resources.disk_fill(self._faults, self, path, mb)

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Remove the container, whatever its state."""
        if self._container is not None:
            self._remove()

    # -- the machinery ---------------------------------------------------------------------

    @property
    def _docker(self) -> Any:
        import docker

        return docker

    def _engine_call(self, what: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except self._docker.errors.ImageNotFound as error:
            raise ServiceError(
                f"service {self.name!r}: the image {self.image} is not on the engine ({error}); "
                f"pull it (`docker pull {self.image}` or `podman pull {self.image}`) or build it"
            ) from None
        except self._docker.errors.DockerException as error:
            raise ServiceError(f"service {self.name!r}: cannot {what}: {error}") from None

    def _create(self) -> Any:
        return self._engine_call(
            f"create a container of {self.image}",
            self._client.containers.create,
            self.image,
            command=self.command,
            environment=self.env,
            ports={key: ("127.0.0.1", port) for key, port in self.ports.items()},
            labels=self.labels,
            detach=True,
            **self.options,
        )

    def _launch(self, *, wait: bool) -> None:
        __tracebackhide__ = True
        if self._container is None:
            self._container = self._create()
            self._removed = False
        self._log_offset = len(self._read_logs())
        self._engine_call("start the container", self._container.start)
        self._pause = None
        if wait:
            try:
                self.wait_ready()
            except ServiceError:
                self._shut_down(0)  # nothing half-started keeps running; teardown removes it
                raise

    def _read_logs(self) -> bytes:
        if self._container is None:
            return b""
        try:
            return bytes(self._container.logs(stdout=True, stderr=True))
        except self._docker.errors.NotFound:
            return b""

    def _identity(self) -> dict[str, Any]:
        return {"container": self.short_id, "image": self.image}

    def _exit_code(self) -> int | None:
        status = self.status
        if status == "removed":
            return -1
        if status not in ("exited", "dead"):
            return None
        return int(self._container.attrs["State"]["ExitCode"])

    def _is_started(self) -> bool:
        return self._container is not None

    def _freeze(self) -> None:
        self._engine_call("pause the container", self._container.pause)

    def _continue(self) -> None:
        if self.status == "paused":
            self._engine_call("unpause the container", self._container.unpause)

    def _kill_and_reap(self) -> None:
        self.resume()  # a paused container is unpaused first: the engines differ there
        self._engine_call("kill the container", self._container.kill)
        self._wait_exited(GONE_TIMEOUT_S)

    def _shut_down(self, grace: float) -> None:
        """``docker stop``: SIGTERM, SIGKILL after ``grace`` seconds (whole seconds, the
        API's unit, rounded up); returns once it has exited."""
        self.resume()
        if self.running:
            seconds = int(-(-grace // 1))
            self._engine_call("stop the container", self._container.stop, timeout=seconds)
            self._wait_exited(GONE_TIMEOUT_S)

    def _wait_exited(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.running:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"service {self.name!r}: container {self.short_id} still runs "
                    f"{timeout:g} s after it was killed"
                )
            time.sleep(_POLL_S)

    def _remove(self) -> None:
        container = self._container
        self.resume()
        self._earlier_logs += self._read_logs()
        try:
            container.remove(force=True)
        except self._docker.errors.NotFound:
            pass  # already gone
        except self._docker.errors.DockerException as error:
            raise ServiceError(
                f"service {self.name!r}: cannot remove container {container.short_id}: {error}"
            ) from None
        self._container = None
        self._removed = True
