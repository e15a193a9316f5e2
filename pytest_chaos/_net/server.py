"""An HTTP/1.1 server on asyncio and h11, the transport of the proxy's Toxiproxy API and of
the flag server: it listens, serves each client with keep-alive under deadlines
(:mod:`pytest_chaos._net.connection`), refuses a body over ``max_body`` and a client past
``max_connections``, and hands every request to :meth:`HttpServer.dispatch`, which a server
of the package defines with its routes and wording."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import replace

from pytest_chaos._net.connection import HttpConnection
from pytest_chaos._net.errors import HttpError
from pytest_chaos._net.loops import url_for
from pytest_chaos._net.messages import Reply, Request

log = logging.getLogger("pytest_chaos.proxy.api")


def crowded(max_connections: int) -> Reply:
    """The answer (503, closing) to a client past ``max_connections``."""
    full = HttpError(
        f"too many API connections: the limit is {max_connections}; close idle "
        "connections or retry",
        503,
    )
    refusal = Reply.error(full, close=True)
    return replace(refusal, headers=(*refusal.headers, ("Retry-After", "1")))


class HttpServer:
    """Listens with :meth:`start`, stops with :meth:`close`; subclasses answer requests.

    ``too_large`` is the answer to a body over ``max_body`` (closing the connection)."""

    def __init__(self, *, max_body: int, max_connections: int, too_large: Reply) -> None:
        self.max_body = max_body
        self.max_connections = max_connections
        self.too_large = too_large
        self.full = crowded(max_connections)
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[HttpConnection] = set()

    async def dispatch(self, request: Request) -> Reply:
        """The answer to ``request``; must never raise."""
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0 picks one); return the address bound."""
        try:
            self._server = await asyncio.start_server(
                self._accept, host, port, backlog=1024, reuse_address=True
            )
        except OSError as error:
            reason = os.strerror(error.errno).lower() if error.errno else str(error)
            raise HttpError(f"listen tcp {host}:{port}: bind: {reason}") from None
        host, port = self._server.sockets[0].getsockname()[:2]
        log.info("API listening on %s", url_for(host, port))
        return host, port

    async def close(self) -> None:
        """Stop listening and close every client connection.

        ``Server.close()`` closes the listening sockets at once; its ``wait_closed()`` is
        not awaited because from Python 3.12 it also waits for every client to hang up."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        clients = list(self._clients)
        for client in clients:
            client.abort()
        await asyncio.gather(*(client.finished() for client in clients))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = HttpConnection(self, reader, writer)
        if len(self._clients) >= self.max_connections:
            log.warning("API connection refused: %d connections open", len(self._clients))
            await client.shed(self.full)
            return
        self._clients.add(client)
        try:
            await client.serve()
        finally:
            self._clients.discard(client)
