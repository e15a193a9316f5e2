"""Errors of the Toxiproxy API, shared by the embedded engine, its HTTP API and the client.

Each error carries the HTTP status and the message Toxiproxy answers with, so the engine
raises exactly what the API must send and the client rebuilds the same exception from a
response, whichever server produced it.
"""

from __future__ import annotations

from typing import final

from pytest_chaos._net import errors as http_errors
from pytest_chaos._net.errors import HttpError


class ToxiproxyError(HttpError):
    """An error the Toxiproxy API reports as ``{"error": message, "status": status}``."""


class BadRequest(ToxiproxyError):
    """The request was malformed or named an invalid value (400)."""

    status = 400


@final
class InvalidToxic(BadRequest):
    """A toxic's type, stream, toxicity or attributes are not allowed (400)."""


class NotFound(ToxiproxyError):
    """The named proxy or toxic does not exist (404)."""

    status = 404


@final
class ProxyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("proxy not found")


@final
class ToxicNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("toxic not found")


class Conflict(ToxiproxyError):
    """A proxy or toxic of that name already exists (409)."""

    status = 409


@final
class ProxyExists(Conflict):
    def __init__(self) -> None:
        super().__init__("proxy already exists")


@final
class ToxicExists(Conflict):
    def __init__(self) -> None:
        super().__init__("toxic already exists")


class ListenError(ToxiproxyError):
    """The proxy could not listen on its address (500, with the system's reason)."""

    status = 500


def missing_field(field: str) -> BadRequest:
    """Toxiproxy's wording for a required field that is absent or empty."""
    return BadRequest(f"missing required field: {field}")


def bad_body(reason: str) -> BadRequest:
    """Toxiproxy's wording for a body that is not the JSON it expects."""
    return BadRequest(http_errors.bad_body(reason).message)
