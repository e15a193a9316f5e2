"""Routing as gorilla/mux does it (so as Toxiproxy does): path patterns with ``{name}``
segments, a handler per method, and Go's cleaning of request paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from pytest_chaos._net.messages import Reply, Request

Params = dict[str, str]
Handler = Callable[[Request, Params], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    """A path pattern (``{name}`` matches one non-empty segment) and a handler per method."""

    pattern: tuple[str, ...]
    methods: Mapping[str, Handler]

    @classmethod
    def of(cls, pattern: str, **methods: Handler) -> Route:
        return cls(tuple(pattern[1:].split("/")), methods)

    def match(self, segments: list[str]) -> Params | None:
        if len(segments) != len(self.pattern):
            return None
        params: Params = {}
        for part, segment in zip(self.pattern, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    return None
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


def clean_path(path: str) -> str:
    """Go's ``path.Clean`` keeping a trailing slash, as gorilla/mux cleans request paths."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned
