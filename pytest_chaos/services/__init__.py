"""What is under test, started and broken: local processes (``service.process``) and
containers (``service.container``), with readiness probes, process and container faults,
blast-radius picks and resource faults."""

from __future__ import annotations

from pytest_chaos.services.container import ContainerService
from pytest_chaos.services.container_resources import ContainerDiskFill, ContainerHog
from pytest_chaos.services.errors import ReadinessError, ServiceError
from pytest_chaos.services.lifecycle import Service
from pytest_chaos.services.manager import ServiceManager
from pytest_chaos.services.process import ProcessService
from pytest_chaos.services.resources import DiskFill, Hog

__all__ = [
    "ContainerDiskFill",
    "ContainerHog",
    "ContainerService",
    "DiskFill",
    "Hog",
    "ProcessService",
    "ReadinessError",
    "Service",
    "ServiceError",
    "ServiceManager",
]
