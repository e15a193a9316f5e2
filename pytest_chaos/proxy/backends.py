"""Where the Toxiproxy API comes from: the embedded server, a ``toxiproxy-server`` binary, a
container, or a URL someone else runs. Every backend ends as a URL; everything above it
speaks HTTP, so the embedded engine is just another server.

Server processes are started by the session's supervisor, which ends them if the test
process dies; their output goes to an anonymous file, which no exit can leave behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, final

from pytest_chaos._net.containers import (
    EngineError,
    connect_engine,
    import_docker,
    session_labels,
    sweep_stale_containers,
)
from pytest_chaos.core.errors import ChaosError
from pytest_chaos.leftovers.supervisor import SupervisedProcess, Supervisor, SupervisorError
from pytest_chaos.proxy.target import DEFAULT_CONTAINER_IMAGE, ToxiproxyTarget

READY_TIMEOUT_S = 30.0


class BackendError(ChaosError, RuntimeError):
    """A Toxiproxy backend could not be started; the message says what was tried."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, what: str, alive: Callable[[], str | None] = lambda: None) -> None:
    """Poll ``GET /version`` until the API answers; fail fast if the server died."""
    import httpx  # here, not at module level: loading the plugin must stay cheap
    import tenacity

    last_error: list[str] = ["no answer yet"]

    def probe() -> None:
        died = alive()
        if died is not None:
            raise BackendError(f"{what} exited before answering at {url}: {died}")
        try:
            httpx.get(url + "/version", timeout=2).raise_for_status()
        except httpx.HTTPError as error:
            last_error[0] = f"{type(error).__name__}: {error}"
            raise

    try:
        for attempt in tenacity.Retrying(
            stop=tenacity.stop_after_delay(READY_TIMEOUT_S),
            wait=tenacity.wait_exponential(multiplier=0.01, max=0.5),
            retry=tenacity.retry_if_exception_type(httpx.HTTPError),
            reraise=True,
        ):
            with attempt:
                probe()
    except httpx.HTTPError:
        raise BackendError(
            f"{what} did not answer GET {url}/version within {READY_TIMEOUT_S:.0f} s; "
            f"last error: {last_error[0]}"
        ) from None


class Backend:
    """A Toxiproxy API for the session: ``start()`` returns its URL, ``stop()`` ends it."""

    description = "toxiproxy"

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop what ``start`` started; a server someone else runs is left alone."""


@final
class UrlBackend(Backend):
    """A Toxiproxy API that is already running (Docker Compose, a sidecar, another host).
    The run's proxies and toxics there are removed when the session ends, however it ends
    (the supervisor does it if the test process dies)."""

    def __init__(self, url: str, supervisor: Supervisor | None = None) -> None:
        self.url = url
        self.description = url
        self._supervisor = supervisor

    def start(self) -> str:
        wait_ready(self.url, f"the Toxiproxy API at {self.url}")
        if self._supervisor is not None:
            try:
                self._supervisor.watch(self.url)
            except SupervisorError as error:
                raise BackendError(str(error)) from None
        return self.url


@final
class ProcessBackend(Backend):
    """A server process on a free loopback port, stopped with the session (or by the
    session's supervisor, if the test process dies)."""

    def __init__(
        self,
        argv_for_port: Callable[[int], list[str]],
        description: str,
        supervisor: Supervisor,
    ) -> None:
        self._argv_for_port = argv_for_port
        self.description = description
        self._supervisor = supervisor
        self._process: SupervisedProcess | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> str:
        port = free_port()
        argv = self._argv_for_port(port)
        self._log = tempfile.TemporaryFile(prefix="pytest-chaos-server-")  # noqa: SIM115 (closed by stop())
        try:
            # its own session (the supervisor's doing): Ctrl-C in a terminal reaches pytest
            # only, which still needs the server to undo the interrupted test's faults
            self._process = self._supervisor.spawn(argv, stdout=self._log.fileno())
        except (OSError, SupervisorError) as error:
            raise BackendError(f"cannot start {self.description} ({argv[0]}): {error}") from None
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, self.description, self._exit_reason)
        return url

    def _exit_reason(self) -> str | None:
        if self._process is None or self._process.poll() is None:
            return None
        return f"exit code {self._process.returncode}; output: {self.output()[-2000:]!r}"

    def output(self) -> str:
        """What the server wrote so far."""
        if self._log is None:
            return ""
        return os.pread(self._log.fileno(), 1 << 24, 0).decode(errors="replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def embedded_backend(seed: int, supervisor: Supervisor) -> ProcessBackend:
    """The embedded engine as a process of its own: its own interpreter and GIL, so a test
    that keeps the CPU busy does not skew toxic timing (measured in BENCHMARKS.md)."""

    return ProcessBackend(lambda port: embedded_argv(port, seed), "embedded", supervisor)


def embedded_argv(port: int, seed: int) -> list[str]:
    """The command line of the drop-in server on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "pytest_chaos.proxy",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--seed",
        str(seed),
    ]


def find_toxiproxy_binary(explicit: str = "") -> str:
    """``toxiproxy-server`` from ``explicit``, $TOXIPROXY_SERVER, PATH or ``go install``."""
    candidates = (
        [explicit]
        if explicit
        else [
            os.environ.get("TOXIPROXY_SERVER", ""),
            shutil.which("toxiproxy-server") or "",
            # `go install` puts binaries in the first GOPATH entry's bin
            str(
                Path(os.environ.get("GOPATH", "").split(os.pathsep)[0] or Path.home() / "go")
                / "bin"
                / "server"
            ),
        ]
    )
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    tried = ", ".join(c for c in candidates if c) or "nothing"
    raise BackendError(
        f"toxiproxy-server not found (tried {tried}); install it with `go install "
        "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0` or give binary=PATH"
    )


def binary_backend(path: str, supervisor: Supervisor) -> ProcessBackend:
    binary = find_toxiproxy_binary(path)

    def argv(port: int) -> list[str]:
        return [binary, "-host", "127.0.0.1", "-port", str(port)]

    return ProcessBackend(argv, f"toxiproxy-server ({binary})", supervisor)


@final
class ContainerBackend(Backend):
    """The Toxiproxy image run through the Docker SDK (Docker, or Podman's Docker API).

    The container shares the host network so that proxies it creates on 127.0.0.1 are
    reachable from tests and can reach services on the host's loopback. It carries the
    session's label and its owner (host, boot, pid), so that a later session can remove it
    if this one dies without teardown (see ``sweep_stale_containers``).
    """

    def __init__(self, image: str, session_id: str) -> None:
        self.image = image or DEFAULT_CONTAINER_IMAGE
        self.session_id = session_id
        self.description = f"container {self.image}"
        self._client: Any = None
        self._container: Any = None
        #: the short ids of the stale containers that ``start`` removed
        self.swept: list[str] = []

    def start(self) -> str:
        try:
            docker = import_docker("the container backend")
            self._client = connect_engine(docker)
        except EngineError as error:
            raise BackendError(str(error)) from None
        # from here on, whatever goes wrong: remove what was created, close the client
        try:
            return self._start(self._client, docker)
        except BaseException:
            self.stop()
            raise

    def _start(self, client: Any, docker: Any) -> str:
        self.swept = sweep_stale_containers(client)
        self._require_image(client, docker)
        port = free_port()
        try:
            self._container = client.containers.create(
                self.image,
                command=["-host", "127.0.0.1", "-port", str(port)],
                network_mode="host",
                labels=session_labels(self.session_id),
                detach=True,
            )
            self._container.start()
        except docker.errors.DockerException as error:
            raise BackendError(f"cannot run {self.image}: {error}") from None
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, self.description, self._exit_reason)
        return url

    def _require_image(self, client: Any, docker: Any) -> None:
        """The image, pulled if the engine does not have it; else a BackendError that says
        how to get it."""
        try:
            client.images.get(self.image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as error:
            raise BackendError(f"cannot look up the image {self.image}: {error}") from None
        errors: list[str] = []
        try:
            # the low-level stream: the high-level pull drops the engine's error messages
            for line in client.api.pull(self.image, stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    errors.append(str(line["error"]))
        except docker.errors.DockerException as error:
            errors.append(str(error))
        if errors:
            raise BackendError(
                f"the image {self.image} is not on the engine and pulling it failed: "
                f"{errors[-1]}. Pull it (`docker pull {self.image}` or `podman pull "
                f"{self.image}`) where a registry is reachable, or build it locally from "
                "Toxiproxy's Go module as docs/docker-compose.md describes "
                '("Without a registry")'
            )

    def _exit_reason(self) -> str | None:
        import docker

        container = self._container
        try:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs().decode(errors="replace")[-2000:]
                return f"container {container.short_id} {container.status}; output: {logs!r}"
        except docker.errors.NotFound:
            return f"container {container.short_id} was removed"
        return None

    def stop(self) -> None:
        container, self._container = self._container, None
        client, self._client = self._client, None
        if container is None and client is None:
            return  # never started (the Docker SDK may not even be installed)
        import docker

        try:
            if container is not None:
                container.remove(force=True)
        except docker.errors.NotFound:
            pass  # already gone: someone removed it, or it was swept
        finally:
            if client is not None:
                client.close()


def make_backend(
    target: ToxiproxyTarget, *, seed: int, session_id: str, supervisor: Supervisor
) -> dict[str, Backend]:
    """The backends named by ``--chaos-toxiproxy``; the first is the ``toxiproxy`` fixture's."""
    if target.kind == "embedded":
        return {"default": embedded_backend(seed, supervisor)}
    if target.kind == "url":
        return {"default": UrlBackend(target.value, supervisor)}
    if target.kind == "binary":
        return {"default": binary_backend(target.value, supervisor)}
    if target.kind == "container":
        return {"default": ContainerBackend(target.value, session_id)}
    return {name: UrlBackend(url, supervisor) for name, url in target.hosts.items()}
