"""What is under test, started and broken: local processes (``service.process``), with
readiness probes, process faults, blast-radius picks and resource faults."""

from __future__ import annotations

from .errors import ReadinessError, ServiceError
from .manager import ServiceManager
from .process import ProcessService
from .resources import DiskFill, Hog

__all__ = ["DiskFill", "Hog", "ProcessService", "ReadinessError", "ServiceError", "ServiceManager"]
