"""The error an HTTP server of the package answers with: a message and a status, in
Toxiproxy's JSON shape ``{"error": message, "status": status}`` unless a server words it
otherwise (the flag server does)."""

from __future__ import annotations

from pytest_chaos.core.errors import ChaosError


class HttpError(ChaosError):
    """A request answered with ``status`` and ``message`` rather than served."""

    status: int = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status}


def bad_body(reason: str) -> HttpError:
    """Toxiproxy's wording (400) for a body that is not the JSON it expects."""
    return HttpError(f"bad request body: {reason}", 400)
