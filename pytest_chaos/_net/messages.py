"""Requests and replies of the HTTP API, and the JSON they carry, encoded as Go's encoder
writes it and decoded with clear errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, final

from pytest_chaos._net.errors import HttpError, bad_body

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@final
@dataclass(frozen=True)
class Request:
    """An HTTP request read in full: the decoded path, headers by lower-case name, body."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@final
@dataclass(frozen=True)
class Reply:
    """An HTTP answer; ``close`` asks for the connection to be closed after it."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Reply:
        """Compact JSON, as Go's encoder writes it (ASCII-safe, so any string encodes)."""
        return cls(status, dump_json(value), JSON_TYPE)

    @classmethod
    def text(cls, status: int, text: str, **kwargs: Any) -> Reply:
        """A plain-text answer the way Go's ``http.Error`` writes it."""
        headers = (("X-Content-Type-Options", "nosniff"),)
        return cls(status, text.encode() + b"\n", TEXT_TYPE, headers, **kwargs)

    @classmethod
    def error(cls, error: HttpError, **kwargs: Any) -> Reply:
        """Toxiproxy's error answer: JSON, but labelled text/plain by ``http.Error``."""
        return cls.text(error.status, dump_json(error.to_json()).decode(), **kwargs)


def dump_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def parse_json(body: bytes) -> Any:
    """Decode a request body as JSON, or raise a 400 that says what is wrong with it."""
    if not body.strip():
        raise bad_body("the body is empty; expected JSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise bad_body(f"the body is not UTF-8 (invalid byte at offset {error.start})") from None
    try:
        return _without_lone_surrogates(json.loads(text, parse_constant=_reject_constant))
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        if error.pos >= len(text.rstrip()):
            raise bad_body(f"invalid JSON: the body ends too early, at {where}") from None
        raise bad_body(f"invalid JSON at {where}: {error.msg}") from None
    except RecursionError:
        raise bad_body("invalid JSON: nested too deeply") from None
    except ValueError as error:  # NaN/Infinity, or an integer with too many digits
        raise bad_body(f"invalid JSON: {error}") from None


def _without_lone_surrogates(value: Any) -> Any:
    """Replace escaped lone surrogates (``"\\ud800"``) with U+FFFD, as Go's decoder does: a
    name holding one could never be addressed in a URL path again."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
