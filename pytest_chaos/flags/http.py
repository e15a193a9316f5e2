"""The flag server's HTTP rules: routing with ``Allow``, bearer tokens, CORS, JSON errors.

The transport (h11 over asyncio, bodies, limits) is the package's HTTP server
(:mod:`pytest_chaos._net.server`); everything a flag client sees is decided here: a wrong method answers 405 with ``Allow``, a missing or wrong bearer
token 401 with ``WWW-Authenticate``, a body over the limit 413 as JSON, and, for the
origins allowed (none by default), CORS headers and preflight answers. A browser request
from an origin that is not allowed may read flags (the browser hides the answer) but
never change them: the admin API answers it 403, against cross-site requests.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, final
from urllib.parse import unquote

from pytest_chaos._net.messages import Reply, Request, dump_json
from pytest_chaos._net.routes import Handler, Params
from pytest_chaos._net.routes import Route as PathRoute
from pytest_chaos._net.server import HttpServer
from pytest_chaos.core.errors import ChaosError

__all__ = ["JSON", "Access", "FlagHttp", "Refusal", "Route"]

log = logging.getLogger(__name__)

JSON = "application/json"
#: The largest request body the flag server reads, and the clients it serves at once.
MAX_BODY = 1 << 20
MAX_CONNECTIONS = 512


class Refusal(ChaosError):
    """A request answered with a JSON error body and a status (never a 500)."""

    def __init__(
        self, status: int, body: Mapping[str, Any], headers: Iterable[tuple[str, str]] = ()
    ):
        super().__init__(body)
        self.status = status
        self.body = dict(body)
        self.headers = tuple(headers)

    def reply(self) -> Reply:
        return Reply(self.status, dump_json(self.body), JSON, self.headers)


@final
@dataclass(frozen=True)
class Route(PathRoute):
    """A path pattern (``{name}`` matches one non-empty segment), its handlers by method,
    and its area (``ofrep`` or ``admin``: the token it takes, the shape of its errors)."""

    area: str = "ofrep"

    @classmethod
    def of(cls, pattern: str, area: str = "ofrep", **methods: Handler) -> Route:  # type: ignore[override]
        return cls(tuple(pattern[1:].split("/")), methods, area)


@final
@dataclass(frozen=True)
class Access:
    """Who may use the server: bearer tokens by area (None: no token asked) and the
    browser origins CORS allows (``"*"`` for any; none by default)."""

    tokens: Mapping[str, str | None] = field(default_factory=dict)
    origins: frozenset[str] = frozenset()

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins


def error_body(area: str, message: str) -> dict[str, str]:
    """An error body in the area's shape: OFREP's ``errorDetails``, the admin's ``error``."""
    return {"errorDetails": message} if area == "ofrep" else {"error": message}


@final
class FlagHttp(HttpServer):
    """Serves ``routes`` under the rules of the module, over the package's HTTP server."""

    def __init__(
        self,
        routes: list[Route],
        access: Access,
        *,
        max_body: int = MAX_BODY,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        message = f"the request body is larger than the limit of {max_body} bytes"
        too_large = Reply(413, dump_json({"errorDetails": message}), JSON, close=True)
        super().__init__(max_body=max_body, max_connections=max_connections, too_large=too_large)
        self.flag_routes = routes
        self.access = access

    async def dispatch(self, request: Request) -> Reply:
        """Route, check, run; never raises. CORS headers go on every answer to an allowed
        origin, errors included, so a browser client can read them."""
        reply = await self._dispatch(request)
        origin = request.headers.get("origin")
        if origin and self.access.allows(origin):
            allowed = "*" if "*" in self.access.origins else origin
            cors = (
                ("Access-Control-Allow-Origin", allowed),
                ("Access-Control-Expose-Headers", "ETag"),
                ("Vary", "Origin"),
            )
            reply = Reply(
                reply.status, reply.body, reply.content_type, (*reply.headers, *cors), reply.close
            )
        return reply

    async def _dispatch(self, request: Request) -> Reply:
        segments = unquote(request.path)[1:].split("/")
        for route in self.flag_routes:
            params = route.match(segments)
            if params is not None:
                return await self._route(route, request, params)
        return Refusal(404, {"errorDetails": f"no such endpoint: {request.path}"}).reply()

    async def _route(self, route: Route, request: Request, params: Params) -> Reply:
        origin = request.headers.get("origin")
        cors = bool(origin) and self.access.allows(origin or "")
        methods = sorted(route.methods) + (["OPTIONS"] if self.access.origins else [])
        if request.method == "OPTIONS" and cors:
            return self._preflight(methods)
        handler = route.methods.get(request.method)
        if handler is None:
            message = f"{request.method} is not allowed here; allowed: {', '.join(methods)}"
            refusal = Refusal(405, error_body(route.area, message), [("Allow", ", ".join(methods))])
            return refusal.reply()
        if route.area == "admin" and origin and not cors:
            message = f"origin {origin!r} may not change flags (cross-site request refused)"
            return Refusal(403, error_body("admin", message)).reply()
        token = self.access.tokens.get(route.area)
        if token is not None and not _bearer(request, token):
            challenge = [("WWW-Authenticate", 'Bearer realm="pytest-chaos"')]
            message = "a bearer token is required: Authorization: Bearer <token>"
            return Refusal(401, error_body(route.area, message), challenge).reply()
        try:
            return await handler(request, params)
        except Refusal as refusal:
            return refusal.reply()
        except Exception as error:
            log.exception("%s %s failed", request.method, request.path)
            body = error_body(route.area, f"{type(error).__name__}: {error}")
            return Refusal(500, body).reply()

    @staticmethod
    def _preflight(methods: list[str]) -> Reply:
        headers = (
            ("Access-Control-Allow-Methods", ", ".join(methods)),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type, If-None-Match"),
            ("Access-Control-Max-Age", "600"),
        )
        return Reply(204, headers=headers)


def _bearer(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
