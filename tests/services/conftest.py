"""Shared by the service tests: the demo app's command line, the inner-session environment,
the container engine and image, and the session-wide check that no process started
through the plugin survives."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_chaos._net.processes import MARKER

from ..containers import held_image, require_engine
from ..servers import isolate_chaos_env
from .helpers import owned_by


@pytest.fixture(scope="session", autouse=True)
def no_process_survives() -> Iterator[None]:
    """After the last test: no process that a service or a hog of this test process
    started (the in-process pytester sessions included) is alive. (Sessions run in a
    subprocess are checked by the tests that run them.)"""
    yield
    if not sys.platform.startswith("linux"):
        return
    left = owned_by(os.getpid())
    assert not left, f"processes with {MARKER} outlived their test: {left}"


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytest sessions get no chaos settings from outside, and run this checkout."""
    isolate_chaos_env(monkeypatch)


@pytest.fixture
def image() -> Iterator[str]:
    """The busybox image, with an engine that answers; one container test at a time (ask
    for it before ``service``, so that the lock is held until the containers are gone)."""
    with held_image() as image:
        yield image


@pytest.fixture
def engine(image: str) -> Iterator[Any]:
    client = require_engine()
    try:
        yield client
    finally:
        client.close()
