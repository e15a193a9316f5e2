"""A container engine for the tests: the Docker SDK client of the environment (Docker, or
Podman's Docker API through $DOCKER_HOST; ``.ci/podman-setup`` sets one up), the Toxiproxy
image, and a Compose tool.

Whatever is missing makes the test skip with the engine's (or the tool's) own error as the
reason; with PYTEST_CHAOS_REQUIRE_CONTAINERS=1 (CI sets it) the test fails instead.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from pytest_chaos._net.containers import EngineError, connect_engine
from pytest_chaos.proxy.target import DEFAULT_CONTAINER_IMAGE

REQUIRE_ENV = "PYTEST_CHAOS_REQUIRE_CONTAINERS"
IMAGE = DEFAULT_CONTAINER_IMAGE
#: podman-compose before 1.0.6 (Debian 12 ships 1.0.3) adds the project's network to a
#: ``network_mode: host`` service, and Podman refuses the container ("cannot set multiple
#: networks without bridge network mode"), while the tool still exits 0
MIN_PODMAN_COMPOSE = (1, 0, 6)
LOCK_PATH = Path("/tmp/pytest-chaos-container-tests.lock")
BUSYBOX_IMAGE = "localhost/pytest-chaos-busybox:test"
BUSYBOX_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""
HOW_TO = "run .ci/podman-setup (as root) and export DOCKER_HOST=unix:///run/podman-chaos.sock"


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``; fail with it where CI demands containers."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def require_engine() -> Any:
    """A Docker SDK client whose engine answered a ping, or skip/fail with its error."""
    try:
        import docker
    except ImportError:
        unavailable("the Docker SDK is not installed: pip install 'pytest-chaos[docker]'")
    try:
        return connect_engine(docker)
    except EngineError as error:
        unavailable(str(error))


def require_image(client: Any, image: str = IMAGE) -> None:
    """``image`` is on the engine (the tests never pull), or skip/fail saying how to get it."""
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound as error:
        unavailable(f"{error}; to build {image} without a registry, {HOW_TO}")


def busybox_image(client: Any) -> str:
    """A tiny image with a shell, ``httpd`` and ``nc``: this machine's statically linked
    busybox (Debian's busybox-static) in a FROM-scratch image, built here (no registry
    needed) once per engine and then found by its tag. Skip/fail without such a busybox."""
    import docker

    try:
        client.images.get(BUSYBOX_IMAGE)
        return BUSYBOX_IMAGE
    except docker.errors.ImageNotFound:
        pass
    busybox = shutil.which("busybox")
    if busybox is None or b"/ld-linux" in Path(busybox).read_bytes()[:4096]:
        unavailable(
            f"building {BUSYBOX_IMAGE} needs a statically linked busybox: "
            "apt-get install busybox-static"
        )
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(busybox, Path(context, "busybox"))
        Path(context, "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
        client.images.build(path=context, tag=BUSYBOX_IMAGE, rm=True, pull=False)
    return BUSYBOX_IMAGE


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST", "")


def labelled(client: Any, label: str) -> list[Any]:
    """Every container, running or not, with ``label`` (``key`` or ``key=value``)."""
    return list(client.containers.list(all=True, filters={"label": label}))


def remove_quietly(container: Any) -> None:
    import docker

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


@contextmanager
def held_image() -> Iterator[str]:
    """The busybox image on an engine that answers (or skip; fail with
    PYTEST_CHAOS_REQUIRE_CONTAINERS=1), with the machine's container lock held meanwhile:
    a fixture that yields it should come before ``service``, so that the lock is held until
    the test's containers are gone."""
    client = require_engine()
    try:
        with exclusive():
            yield busybox_image(client)
    finally:
        client.close()


@contextmanager
def exclusive() -> Iterator[None]:
    """One container test at a time on this machine, across xdist workers and runs: every
    session of the container backend sweeps the stale containers of dead sessions, and a
    test that leaves one there on purpose must not have another test's session sweep it."""
    with LOCK_PATH.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _version(text: str, pattern: str) -> tuple[int, ...] | None:
    found = re.search(pattern, text)
    return tuple(int(part) for part in found.group(1).split(".")) if found else None


def require_compose() -> tuple[list[str], dict[str, str]]:
    """A Compose command and the environment that points it at $DOCKER_HOST's engine:
    podman-compose (1.0.6 or newer) when there is one, else ``docker compose``."""
    env = dict(os.environ)
    candidates: list[list[str]] = []
    if importlib.util.find_spec("podman_compose") is not None:
        candidates.append([sys.executable, "-m", "podman_compose"])
    if shutil.which("podman-compose"):
        candidates.append(["podman-compose"])
    problems: list[str] = []
    for command in candidates:
        if engine_host().startswith("unix://"):
            # podman-compose drives the podman CLI; CONTAINER_HOST sends it to the same API
            env["CONTAINER_HOST"] = engine_host()
        out = _run_version([*command, "version"], env)
        version = _version(out, r"podman-composer? version:?\s+(\d+(?:\.\d+)+)")
        if version is None:
            problems.append(f"`{' '.join(command)} version` said: {out.strip()[-300:]!r}")
        elif version < MIN_PODMAN_COMPOSE:
            problems.append(
                f"podman-compose {'.'.join(map(str, version))} ({' '.join(command)}) cannot run "
                "a network_mode: host service; pip install 'podman-compose>=1.0.6'"
            )
        else:
            return command, env
    if shutil.which("docker"):
        out = _run_version(["docker", "compose", "version"], os.environ.copy())
        if _version(out, r"version v?(\d+(?:\.\d+)+)") is not None:
            return ["docker", "compose"], dict(os.environ)
        problems.append(f"`docker compose version` said: {out.strip()[-300:]!r}")
    if not problems:
        problems.append("neither podman-compose nor docker (with its compose plugin) is installed")
    unavailable(f"no usable Compose tool: {'; '.join(problems)}")


def _run_version(argv: list[str], env: dict[str, str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return done.stdout + done.stderr


__all__ = [
    "BUSYBOX_IMAGE",
    "IMAGE",
    "REQUIRE_ENV",
    "busybox_image",
    "engine_host",
    "exclusive",
    "labelled",
    "remove_quietly",
    "require_compose",
    "require_engine",
    "require_image",
    "unavailable",
]
