"""The container engine, shared by the container backend of the proxy and by container
services: the Docker SDK (imported only when used), the engine of the environment
($DOCKER_HOST: Docker, or Podman's Docker API), the labels that tie a container to the
session and process that made it, and the sweep of the containers of dead sessions.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, final

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.leftovers.identity import boot_id, pid_exists, process_start

log = logging.getLogger("pytest_chaos._net.containers")

SESSION_LABEL = "io.pytest-chaos.session"
OWNER_HOST_LABEL = "io.pytest-chaos.owner.host"
OWNER_BOOT_LABEL = "io.pytest-chaos.owner.boot"
OWNER_PID_LABEL = "io.pytest-chaos.owner.pid"
OWNER_START_LABEL = "io.pytest-chaos.owner.start"


class EngineError(ChaosError, RuntimeError):
    """No container engine to use: the Docker SDK is missing, or no engine answers."""


def import_docker(user: str) -> Any:
    """The Docker SDK, or an EngineError saying that ``user`` needs it and how to get it."""
    try:
        import docker
    except ImportError:
        raise EngineError(
            f"{user} needs the Docker SDK: pip install 'pytest-chaos[docker]'"
        ) from None
    return docker


def connect_engine(docker: Any) -> Any:
    """A Docker SDK client for the engine of the environment ($DOCKER_HOST, else the
    default socket), checked with a ping; an EngineError with the engine's own error."""
    where = os.environ.get("DOCKER_HOST") or "the default socket (DOCKER_HOST is not set)"
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        raise EngineError(
            f"no container engine answers at {where}: {error}. Start Docker, or Podman's "
            "Docker API (`podman system service --time=0 unix:///run/podman.sock` and "
            "DOCKER_HOST=unix:///run/podman.sock)"
        ) from None
    return client


def session_labels(session_id: str) -> dict[str, str]:
    """The labels of a container this process starts for the session ``session_id``."""
    return {SESSION_LABEL: session_id, **Owner.current().labels()}


@final
class ContainerEngine:
    """One session's connection to the container engine, made on first use (a session that
    starts no container pays nothing), which then sweeps the containers of dead sessions;
    closed with the session."""

    def __init__(self, session_id: str, user: str = "service.container") -> None:
        self.session_id = session_id
        self.user = user
        self._client: Any = None
        #: the short ids of the stale containers removed on connecting
        self.swept: list[str] = []

    @property
    def docker(self) -> Any:
        return import_docker(self.user)

    def client(self) -> Any:
        """The Docker SDK client (EngineError when there is none)."""
        if self._client is None:
            client = connect_engine(self.docker)
            self.swept = sweep_stale_containers(client)
            self._client = client
        return self._client

    def labels(self) -> dict[str, str]:
        return session_labels(self.session_id)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


# -- stale containers of dead sessions ------------------------------------------------------


@final
@dataclass(frozen=True)
class Owner:
    """The process that started a container: where it ran (host name and boot id) and
    which process it is (pid, and its start time, so that a reused pid is not taken for
    it). Empty boot and start where the platform does not tell them (no /proc)."""

    host: str
    boot: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(socket.gethostname(), boot_id(), pid, _start_label(pid))

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Owner | None:
        try:
            return cls(
                labels[OWNER_HOST_LABEL],
                labels.get(OWNER_BOOT_LABEL, ""),
                int(labels[OWNER_PID_LABEL]),
                labels.get(OWNER_START_LABEL, ""),
            )
        except (KeyError, ValueError):
            return None

    def labels(self) -> dict[str, str]:
        return {
            OWNER_HOST_LABEL: self.host,
            OWNER_BOOT_LABEL: self.boot,
            OWNER_PID_LABEL: str(self.pid),
            OWNER_START_LABEL: self.start,
        }

    def dead_reason(self, container_status: str = "running") -> str | None:
        """Why this owner of a container in ``container_status`` is surely dead, seen from
        the current process; None when it may be alive, or when this process cannot tell
        (another host, whose pids are not ours)."""
        me = Owner.current()
        if self.host != me.host:
            return None
        if self.boot != me.boot:
            # An earlier boot of this host (or a namesake host: its pids mean nothing here).
            # A container that no longer runs is then a leftover; a running one may belong
            # to a live session elsewhere.
            if container_status in ("exited", "dead"):
                return f"it is {container_status}, from another boot of {self.host}"
            return None
        if not pid_exists(self.pid):
            return f"its owner, pid {self.pid} on {self.host}, is not running"
        if self.start and self.start != _start_label(self.pid):
            return f"its owner, pid {self.pid} on {self.host}, ended (the pid was reused)"
        return None


def sweep_stale_containers(client: Any) -> list[str]:
    """Remove the containers of sessions that died without teardown (killed, crashed, or
    ended by ``os._exit``): those labelled with ``SESSION_LABEL`` whose owner process ran on
    this host in this boot and is gone. Containers of live sessions, of other hosts, and
    without owner labels are left alone. Returns the short ids of the removed ones."""
    import docker

    removed: list[str] = []
    for container in client.containers.list(all=True, filters={"label": SESSION_LABEL}):
        labels = container.labels or {}
        owner = Owner.from_labels(labels)
        reason = None if owner is None else owner.dead_reason(container.status)
        if reason is None:
            continue
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            continue  # another session swept it first
        except docker.errors.APIError as error:
            log.warning("could not remove the stale container %s: %s", container.short_id, error)
            continue
        removed.append(container.short_id)
        log.warning(
            "removed container %s of the dead pytest-chaos session %s: %s",
            container.short_id,
            labels.get(SESSION_LABEL, "?"),
            reason,
        )
    return removed


def _start_label(pid: int) -> str:
    """The start time of ``pid`` as a label: clock ticks since boot, or '' where unknown."""
    return str(process_start(pid) or "")
