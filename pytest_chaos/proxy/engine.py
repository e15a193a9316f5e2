"""The embedded proxy engine: listeners, connections, and a toxic pipeline per direction.

Every accepted client gets two links (:mod:`.link`): upstream (client to server) and
downstream (server to client). Chain changes apply to live connections without dropping or
reordering a byte.

Everything here runs on one asyncio loop; the HTTP API calls the engine on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast, final

from pytest_chaos.core.seeding import derive
from pytest_chaos.proxy.errors import (
    BadRequest,
    ListenError,
    ProxyExists,
    ProxyNotFound,
    ToxicExists,
    ToxicNotFound,
    bad_body,
    missing_field,
)
from pytest_chaos.proxy.httpframe import REQUEST_START
from pytest_chaos.proxy.link import Link
from pytest_chaos.proxy.metrics import proxy_metrics
from pytest_chaos.proxy.registry import parse_toxic, parse_update
from pytest_chaos.proxy.toxics import STREAMS, Toxic

log = logging.getLogger("pytest_chaos.proxy")

#: Bytes a socket's write buffer may hold before the relay stops reading the other side.
WRITE_HIGH_WATER = 1 << 20
DEFAULT_LISTEN = "127.0.0.1:0"
#: Listen hosts that mean every address: Go binds both IPv4 and IPv6 for each of them.
WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def split_address(address: str, what: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too) as Go's net package does, or raise 400."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise BadRequest(f"{what} address {address!r} must be host:port with a port 0-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def format_address(sockaddr: tuple[Any, ...], family: int) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"


@final
class Engine:
    """A set of named proxies. Its seed, with a proxy's name, gives the proxy's seed (the
    n-th proxy of a name gets ``name#n``), unless the proxy was created with a ``seed`` of
    its own; without either, the proxy's seed is a fresh random one."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.seed = seed
        self._proxies: dict[str, Proxy] = {}
        self._created: Counter[str] = Counter()

    @property
    def proxies(self) -> dict[str, Proxy]:
        return dict(self._proxies)

    def get(self, name: str) -> Proxy:
        try:
            return self._proxies[name]
        except KeyError:
            raise ProxyNotFound() from None

    async def create(self, spec: Any) -> Proxy:
        """``POST /proxies``: validate, refuse duplicates, listen if enabled."""
        return await self._create(ProxySpec.parse(spec))

    async def _create(self, spec: ProxySpec) -> Proxy:
        if spec.name in self._proxies:
            raise ProxyExists()
        self._created[spec.name] += 1
        seed = spec.seed
        if seed is None:
            seed = secrets.randbits(64) if self.seed is None else self._derive(spec.name)
        proxy = Proxy(self, spec.name, spec.listen, spec.upstream, seed)
        if spec.enabled:
            await proxy.start()
        self._proxies[spec.name] = proxy
        log.info("created proxy %s listen=%s upstream=%s", spec.name, proxy.listen, spec.upstream)
        return proxy

    def _derive(self, name: str) -> int:
        assert self.seed is not None
        count = self._created[name]
        return derive(self.seed, "proxy", name if count == 1 else f"{name}#{count}")

    async def update(self, name: str, spec: Any) -> Proxy:
        """``POST``/``PATCH /proxies/{name}``: change listen, upstream or enabled."""
        proxy = self.get(name)
        if not isinstance(spec, dict):
            raise bad_body(f"expected a JSON object, got {type(spec).__name__}")
        listen = _optional(spec, "listen", str, proxy.listen)
        upstream = _optional(spec, "upstream", str, proxy.upstream)
        enabled = _optional(spec, "enabled", bool, proxy.enabled)
        seed = _seed(spec)
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        if seed is not None:
            proxy.seed = seed
        if listen != proxy.listen or upstream != proxy.upstream:
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled and proxy.enabled:
            await proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self._proxies[name]
        log.info("deleted proxy %s", name)

    async def populate(self, specs: Any) -> list[Proxy]:
        """``POST /populate``: create or replace each proxy; ones already configured the same
        way are kept as they are (with their toxics), as in Toxiproxy."""
        if not isinstance(specs, list):
            raise bad_body("expected a JSON array of proxies")
        parsed = []
        for index, spec in enumerate(specs, start=1):
            try:
                parsed.append(ProxySpec.parse(spec))
            except BadRequest as error:
                raise type(error)(f"{error.message} at proxy {index}") from None
        result: list[Proxy] = []
        for spec in parsed:
            existing = self._proxies.get(spec.name)
            if existing is not None:
                if existing.listen == spec.listen and existing.upstream == spec.upstream:
                    result.append(existing)
                    continue
                await self.delete(spec.name)
            result.append(await self._create(spec))
        return result

    async def reset(self) -> None:
        """``POST /reset``: enable every proxy and remove every toxic."""
        for proxy in self._proxies.values():
            if not proxy.enabled:
                await proxy.start()
            proxy.remove_all_toxics()

    def add_toxic(self, proxy_name: str, spec: Any) -> Toxic:
        proxy = self.get(proxy_name)
        toxic = parse_toxic(spec)
        if toxic.name in proxy.toxics:
            raise ToxicExists()
        proxy.add_toxic(toxic)
        log.info("added toxic %s (%s) to %s", toxic.name, toxic.type, proxy_name)
        return toxic

    def get_toxic(self, proxy_name: str, toxic_name: str) -> Toxic:
        try:
            return self.get(proxy_name).toxics[toxic_name]
        except KeyError:
            raise ToxicNotFound() from None

    def update_toxic(self, proxy_name: str, toxic_name: str, spec: Any) -> Toxic:
        toxic = self.get_toxic(proxy_name, toxic_name)
        attributes, toxicity = parse_update(toxic, spec)
        toxic.update(attributes, toxicity)
        self.get(proxy_name).each_link(toxic, Link.update)
        log.info("updated toxic %s on %s", toxic_name, proxy_name)
        return toxic

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        toxic = self.get_toxic(proxy_name, toxic_name)
        self.get(proxy_name).remove_toxic(toxic)
        log.info("removed toxic %s from %s", toxic_name, proxy_name)

    async def close(self) -> None:
        """Stop every proxy: listeners closed, connections closed."""
        for proxy in self._proxies.values():
            await proxy.stop()

    def metrics(self) -> str:
        """The proxies' counters in Prometheus text format (:func:`.metrics.proxy_metrics`)."""
        return proxy_metrics(self._proxies.values())


def _optional(spec: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = spec.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise bad_body(f"{key} must be a {'boolean' if kind is bool else 'string'}, got {value!r}")
    return value


def _seed(spec: dict[str, Any]) -> int | None:
    """The ``seed`` extension: Toxiproxy ignores the field; the engine derives the proxy's
    draws (toxicity, jitter, slicing) from it."""
    seed = spec.get("seed")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise bad_body(f"seed must be an integer from 0 to 2**64-1, got {seed!r}")
    return seed


@final
@dataclass(frozen=True)
class ProxySpec:
    """A proxy as ``POST /proxies`` and ``/populate`` describe it, validated."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    seed: int | None

    @classmethod
    def parse(cls, spec: Any) -> ProxySpec:
        if not isinstance(spec, dict):
            raise bad_body("expected a JSON object describing a proxy")
        name = _optional(spec, "name", str, "")
        if not name:
            raise missing_field("name")
        upstream = _optional(spec, "upstream", str, "")
        if not upstream:
            raise missing_field("upstream")
        listen = _optional(spec, "listen", str, "") or DEFAULT_LISTEN
        enabled = _optional(spec, "enabled", bool, True)
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        return cls(name, listen, upstream, enabled, _seed(spec))


class Proxy:
    """One listener forwarding to one upstream, with its toxics and live connections."""

    def __init__(self, engine: Engine, name: str, listen: str, upstream: str, seed: int) -> None:
        self.engine = engine
        self.seed = seed
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self.accepted = 0  # connections accepted so far: the next one's ordinal, less one
        self.http_clients = 0  # of those, the ones whose first bytes were an HTTP request
        self._added: Counter[str] = Counter()
        self._server: asyncio.AbstractServer | None = None
        self._closed_bytes = {(d, m): 0 for d in STREAMS for m in ("received", "sent")}

    @property
    def enabled(self) -> bool:
        return self._server is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.ordered_toxics()],
        }

    def ordered_toxics(self) -> list[Toxic]:
        """Upstream toxics, then downstream ones, each in the order they were added."""
        return [t for stream in STREAMS for t in self.chain(stream)]

    def chain(self, stream: str) -> list[Toxic]:
        return [toxic for toxic in self.toxics.values() if toxic.stream == stream]

    async def start(self) -> None:
        sock = self._bind()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: SocketSide(self, None), sock=sock, backlog=1024
            )
        except BaseException:
            sock.close()
            raise
        self.listen = format_address(sock.getsockname(), sock.family)
        log.info("proxy %s listening on %s", self.name, self.listen)

    def _bind(self) -> socket.socket:
        host, port = split_address(self.listen, "listen")
        if host in WILDCARDS and socket.has_dualstack_ipv6():
            # Go listens on both families for any wildcard, and reports it as [::]:PORT
            return self._listen(socket.AF_INET6, ("::", port), dual_stack=True)
        try:
            infos = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except (socket.gaierror, UnicodeError, ValueError) as error:
            raise ListenError(
                f"listen tcp {self.listen}: lookup {host}: {getattr(error, 'strerror', None) or error}"
            ) from None
        family, _, _, _, sockaddr = sorted(infos, key=lambda info: info[0] != socket.AF_INET)[0]
        return self._listen(family, sockaddr)

    def _listen(
        self, family: int, sockaddr: tuple[Any, ...], dual_stack: bool = False
    ) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if dual_stack:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(sockaddr)
            sock.listen(1024)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            reason = (error.strerror or str(error)).lower()
            raise ListenError(f"listen tcp {self.listen}: bind: {reason}") from None
        return sock

    async def stop(self) -> None:
        """Close the listener and every connection (the ``down`` fault)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            log.info("proxy %s stopped", self.name)
        for connection in list(self.connections):
            connection.abort()
        if server is not None:
            await server.wait_closed()

    def add_toxic(self, toxic: Toxic) -> None:
        """Append ``toxic`` to its stream's chain, on every live connection too."""
        self._added[toxic.name] += 1
        count = self._added[toxic.name]
        toxic.identity = toxic.name if count == 1 else f"{toxic.name}#{count}"
        self.toxics[toxic.name] = toxic
        self.each_link(toxic, Link.add)

    def remove_toxic(self, toxic: Toxic) -> None:
        del self.toxics[toxic.name]
        self.each_link(toxic, Link.remove)

    def remove_all_toxics(self) -> None:
        for toxic in list(self.toxics.values()):
            self.remove_toxic(toxic)

    def each_link(self, toxic: Toxic, change: Any) -> None:
        """Apply ``change(link, toxic)`` on the link of ``toxic``'s stream of every live
        connection: one toxic's change costs the same whatever the chain's length."""
        # a copy: removing a timeout toxic closes connections, which forgets them
        for connection in list(self.connections):
            if not connection.closed:
                change(connection.links[toxic.stream], toxic)

    def byte_count(self, direction: str, metric: str) -> int:
        live: int = sum(getattr(c.links[direction], metric) for c in self.connections)
        return self._closed_bytes[direction, metric] + live

    def forget(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            for direction, link in connection.links.items():
                self._closed_bytes[direction, "received"] += link.received
                self._closed_bytes[direction, "sent"] += link.sent


@final
class Connection:
    """A proxied client: its socket, the upstream socket, and the two links between them."""

    def __init__(self, proxy: Proxy, client: SocketSide) -> None:
        self.proxy = proxy
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.server = server = SocketSide(proxy, self)
        self.links = {
            "upstream": Link(self, "upstream", client, server),
            "downstream": Link(self, "downstream", server, client),
        }
        client.outbound = server.inbound = self.links["upstream"]
        server.outbound = client.inbound = self.links["downstream"]
        self.closed = False
        self.peer = "?"
        self.ordinal = 0  # the proxy's count of connections when this one was accepted
        self._connecting: asyncio.Task[None] | None = None

    def begin(self) -> None:
        """Hold the client until the upstream answers, then let bytes flow."""
        proxy = self.proxy
        proxy.accepted += 1
        self.ordinal = proxy.accepted
        proxy.connections.add(self)
        self.peer = self.client.peer()
        log.debug(
            "proxy %s: accepted client %s (upstream %s)",
            self.proxy.name,
            self.peer,
            self.proxy.upstream,
        )
        for toxic in proxy.toxics.values():
            self.links[toxic.stream].add(toxic)
        self.client.pause()
        self._connecting = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        host, port = split_address(self.proxy.upstream, "upstream")
        try:
            await self.loop.create_connection(lambda: self.server, host or "localhost", port)
        except (OSError, ValueError) as error:
            log.warning(
                "proxy %s: upstream %s unavailable: %s", self.proxy.name, self.proxy.upstream, error
            )
            self.close()
            return
        finally:
            self._connecting = None
        if self.closed:
            return
        for link in self.links.values():
            link.start()
        # Flow control may already hold the client (data queued past the high-water mark
        # while connecting): resuming behind the link's back would read without bound.
        if not self.links["upstream"].reading_paused:
            self.client.resume()

    def close(self) -> None:
        """Close both sockets after what is already buffered has been written."""
        self._end(lambda side: side.close())

    def abort(self) -> None:
        """Close both sockets at once, discarding anything buffered."""
        self._end(lambda side: side.abort())

    def reset(self) -> None:
        """Close both sockets with TCP RST (SO_LINGER 0), as ``reset_peer`` does."""
        self._end(lambda side: side.reset())

    def _end(self, how: Any) -> None:
        if self.closed:
            return
        self.closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        for link in self.links.values():
            link.stop()
        how(self.client)
        how(self.server)
        self.proxy.forget(self)
        log.debug("proxy %s: closed client %s", self.proxy.name, self.peer)


class SocketSide(asyncio.Protocol):
    """One socket of a proxied connection, the client's or the upstream's."""

    def __init__(self, proxy: Proxy, connection: Connection | None) -> None:
        self.proxy = proxy
        self.connection = connection
        self.transport: asyncio.Transport | None = None
        self.outbound: Link
        self.inbound: Link
        self._paused = False
        self._first = True  # no data yet: the first says whether a client speaks HTTP

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self._paused:
            self.transport.pause_reading()
        if self.connection is None:  # a client the listener just accepted
            if not self.proxy.enabled:  # accepted just before the listener closed
                self.transport.abort()
                return
            self.connection = Connection(self.proxy, self)
            self.connection.begin()

    def data_received(self, data: bytes) -> None:
        if self._first:
            self._first = False
            connection = self.connection
            if connection is not None and self is connection.client and REQUEST_START.match(data):
                self.proxy.http_clients += 1
        if self._paused:
            # uvloop starts reading after connection_made() even if the protocol paused the
            # transport in it (asyncio honours that pause: python/cpython#76002): pause again.
            self.pause()
        link = self.outbound
        if link.direct:
            link.received += len(data)
            link.sent += len(data)
            link.dest.write(data)
        else:
            link.feed(data)

    def eof_received(self) -> bool:
        self.outbound.feed_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        connection = self.connection
        if connection is None or connection.closed:
            return
        if self is connection.server and self.transport is None:
            return
        self.inbound.ended = True
        if not self.outbound.ended:
            self.outbound.feed_eof()
        else:
            connection.close()

    def pause_writing(self) -> None:
        self.inbound.dest_paused(True)

    def resume_writing(self) -> None:
        self.inbound.dest_paused(False)

    # used by links and connections

    def peer(self) -> str:
        """The remote address, as ``host:port``."""
        peername = self.transport.get_extra_info("peername") if self.transport else None
        return f"{peername[0]}:{peername[1]}" if peername else "?"

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write_eof(self) -> bool:
        """Half-close; False if the socket cannot, and must be closed instead."""
        transport = self.transport
        if transport is None or transport.is_closing() or not transport.can_write_eof():
            return False
        transport.write_eof()
        return True

    def pause(self) -> None:
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume(self) -> None:
        self._paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def reset(self) -> None:
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
