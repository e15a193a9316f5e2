"""Where the session's Toxiproxy API comes from, as the settings name it: a value the proxy's
backends read without knowing how it was given (command line, environment or ini)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

#: The image of the ``container`` backend when ``--chaos-toxiproxy=container`` names none.
DEFAULT_CONTAINER_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"


@final
@dataclass(frozen=True)
class ToxiproxyTarget:
    """Where the Toxiproxy API comes from.

    ``kind`` is ``embedded``, ``url``, ``binary``, ``container`` or ``hosts``; ``value`` is the
    URL, binary path or image (empty for the default); ``hosts`` maps names to URLs.
    """

    kind: str
    value: str = ""
    hosts: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "hosts":
            return ",".join(f"{name}={url}" for name, url in self.hosts.items())
        if self.kind == "url":
            return self.value
        return f"{self.kind}={self.value}" if self.value else self.kind
