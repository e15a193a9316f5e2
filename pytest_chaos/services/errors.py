"""What goes wrong with a service, said so that the reader knows what to fix."""

from __future__ import annotations

from pytest_chaos.core.errors import ChaosError


class ServiceError(ChaosError, RuntimeError):
    """A service could not be started, stopped or broken as asked; the message names the
    service and, where it helps, ends with its last log lines."""


class ReadinessError(ServiceError):
    """A service did not become ready in time, or exited first. The message says what was
    tried, the last error, and the service's last log lines; the same are attributes."""

    def __init__(
        self, message: str, *, service: str, tried: str, last_error: str, log_tail: str
    ) -> None:
        super().__init__(message)
        self.service = service
        self.tried = tried
        self.last_error = last_error
        self.log_tail = log_tail
