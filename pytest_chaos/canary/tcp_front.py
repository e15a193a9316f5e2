"""The router's TCP front: each client connection handed to the proxy engine's relay
through a backend per upstream, with the choice made when the connection is accepted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast, final

from pytest_chaos.canary.front import Front, Routing
from pytest_chaos.proxy import timers
from pytest_chaos.proxy.engine import (
    Connection,
    Engine,
    Proxy,
    SocketSide,
    format_address,
)

log = logging.getLogger("pytest_chaos.canary.router")


class _TcpBackend(Proxy):
    """One upstream of a TCP-mode router: the proxy engine's connections and relay, fed by
    the router's listener instead of a listener of its own."""

    def __init__(self, front: TcpFront, pool: str, upstream: str) -> None:
        super().__init__(front.engine, f"{pool}/{upstream}", front.listen, upstream, seed=0)
        self.front = front
        self.pool = pool
        self.started: dict[Connection, float] = {}

    @property
    def enabled(self) -> bool:
        return not self.front.closing

    def admit(self, connection: Connection, started: float) -> None:
        self.started[connection] = started
        connection.loop.call_later(self.front.router.connect_timeout, self._give_up, connection)

    def _give_up(self, connection: Connection) -> None:
        if not connection.closed and not connection.links["upstream"].ready:
            log.info("router: upstream %s did not answer in time", self.upstream)
            connection.close()

    def forget(self, connection: Connection) -> None:
        super().forget(connection)
        started = self.started.pop(connection, None)
        if started is not None:
            ok = connection.links["upstream"].ready
            self.front.router.record(self.pool, self.upstream, started, ok, None)


class _TcpClient(SocketSide):
    """A client the router's listener accepted, given to the backend chosen for it."""

    def __init__(self, front: TcpFront) -> None:
        # the backend is chosen in connection_made, once the client's address is known
        super().__init__(cast(Proxy, None), None)
        self.front = front

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        started = timers.now()
        peer = transport.get_extra_info("peername")
        key = str(peer[0]) if self.front.router.sticky and peer else None
        pool, upstream = self.front.router.route(key)
        if not upstream:
            cast(asyncio.Transport, transport).abort()
            self.front.router.record(pool, upstream, started, False, None)
            return
        self.proxy = backend = self.front.backend(pool, upstream)
        super().connection_made(transport)
        if self.connection is not None:
            backend.admit(self.connection, started)


@final
class TcpFront(Front):
    """Connections routed one by one and relayed by the engine."""

    def __init__(self, router: Routing) -> None:
        super().__init__(router)
        self.engine = Engine(seed=router.seed)
        self.listen = router.listen
        self.backends: dict[tuple[str, str], _TcpBackend] = {}
        self.closing = False

    def backend(self, pool: str, upstream: str) -> _TcpBackend:
        backend = self.backends.get((pool, upstream))
        if backend is None:
            backend = self.backends[pool, upstream] = _TcpBackend(self, pool, upstream)
        return backend

    async def start(self, host: str, port: int) -> Any:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _TcpClient(self), host or None, port, backlog=1024
        )
        self.server = server
        self.listen = format_address(server.sockets[0].getsockname(), server.sockets[0].family)
        return server.sockets[0]

    async def close(self) -> None:
        self.closing = True
        if self.server is not None:
            self.server.close()
        for backend in self.backends.values():
            await backend.stop()
        if self.server is not None:
            await self.server.wait_closed()
