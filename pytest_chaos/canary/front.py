"""What a front end of the router (HTTP or TCP) is, and what it uses of the router: the
table, the choice of an upstream, and the record of what it routed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from pytest_chaos.canary.table import Table


class Routing(Protocol):
    """The router as its front ends see it (:class:`pytest_chaos.canary.router.Router`)."""

    table: Table
    listen: str
    sticky: str | None
    seed: int | None
    connect_timeout: float

    def route(self, key: str | None) -> tuple[str, str]: ...
    def record(
        self, pool: str, upstream: str, started: float, ok: bool, status: int | None
    ) -> int: ...
    def amend(self, index: int) -> None: ...


class Front:
    """What listens and relays, on the router's loop."""

    def __init__(self, router: Routing) -> None:
        self.router = router
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> Any:
        """Listen; return the listening socket."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def apply(self, change: Callable[[Table], Table], drain: float) -> None:
        """Replace the routing table with ``change(table)``; the HTTP front then drains."""
        router = self.router
        router.table = change(router.table)
