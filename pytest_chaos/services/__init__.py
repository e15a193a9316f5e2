"""What is under test, started and broken: local processes (``service.process``) and
containers (``service.container``), with readiness probes, process and container faults,
blast-radius picks and resource faults."""

from __future__ import annotations

from .container import ContainerService
from .container_resources import ContainerDiskFill, ContainerHog
from .errors import ReadinessError, ServiceError
from .lifecycle import Service
from .manager import ServiceManager
from .process import ProcessService
from .resources import DiskFill, Hog

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
