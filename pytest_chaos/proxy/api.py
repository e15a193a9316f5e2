"""The Toxiproxy 2.12 HTTP API over the embedded engine, on asyncio and h11.

Routes, statuses, bodies and content types are Toxiproxy's (gorilla/mux routing included:
unclean paths redirect, a known path with the wrong method answers 405, anything else 404),
so every Toxiproxy client drives this server as it drives the Go one. Each connection is
served by one task with keep-alive (:mod:`.apiconn`), at most ``max_connections`` at once;
engine calls are serialized by one lock, as Toxiproxy
serializes them with its collection mutex, so every request sees a consistent state.
No request can end the server: a protocol error answers 400 and closes, an unexpected
exception answers 500 with its message and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar, final
from urllib.parse import quote, unquote

from pytest_chaos._net.errors import HttpError
from pytest_chaos._net.loops import run, url_for
from pytest_chaos._net.messages import METRICS_TYPE, Reply, Request, parse_json
from pytest_chaos._net.routes import Handler, Params, Route, clean_path
from pytest_chaos._net.server import HttpServer
from pytest_chaos.proxy.engine import Engine
from pytest_chaos.proxy.errors import ToxiproxyError
from pytest_chaos.proxy.metrics import process_metrics

__all__ = ["ApiServer", "ServerThread"]

log = logging.getLogger("pytest_chaos.proxy.api")

#: The Toxiproxy release whose API this server implements, answered by ``GET /version``.
TOXIPROXY_VERSION = "2.12.0"
#: Largest request body accepted; a larger one answers 413.
MAX_BODY = 1 << 20
#: Client connections served at once; one more is answered 503 and closed.
MAX_CONNECTIONS = 512

T = TypeVar("T")


def is_browser(request: Request) -> bool:
    """Toxiproxy refuses browsers, so that a web page cannot drive the API (CSRF)."""
    return request.headers.get("user-agent", "").startswith("Mozilla/")


NOT_FOUND = Reply.text(404, "404 page not found")
METHOD_NOT_ALLOWED = Reply(405)
BROWSER_FORBIDDEN = Reply.text(403, "User agent not allowed")
NO_CONTENT = Reply(204)


# -- the API --------------------------------------------------------------------------------


@final
class ApiServer(HttpServer):
    """Serves the Toxiproxy HTTP API for one engine; start() listens, close() stops."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_body: int = MAX_BODY,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        limit = ToxiproxyError(f"request body too large: the limit is {max_body} bytes", 413)
        super().__init__(
            max_body=max_body,
            max_connections=max_connections,
            too_large=Reply.error(limit, close=True),
        )
        self.engine = engine
        self._lock = asyncio.Lock()
        self._routes = [
            Route.of("/reset", POST=self._reset),
            Route.of("/proxies", GET=self._proxy_index, POST=self._proxy_create),
            Route.of("/populate", POST=self._populate),
            Route.of(
                "/proxies/{proxy}",
                GET=self._proxy_show,
                POST=self._proxy_update,
                PATCH=self._proxy_update,
                DELETE=self._proxy_delete,
            ),
            Route.of("/proxies/{proxy}/toxics", GET=self._toxic_index, POST=self._toxic_create),
            Route.of(
                "/proxies/{proxy}/toxics/{toxic}",
                GET=self._toxic_show,
                POST=self._toxic_update,
                PATCH=self._toxic_update,
                DELETE=self._toxic_delete,
            ),
            Route.of("/version", GET=self._version),
            Route.of("/metrics", GET=self._metrics),
        ]

    # -- dispatch ---------------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Reply:
        """Route a request as gorilla/mux does and run its handler; never raises."""
        path = unquote(request.path)
        cleaned = clean_path(path)
        if cleaned != path:
            location = quote(cleaned) + (f"?{request.query}" if request.query else "")
            return Reply(301, headers=(("Location", location),))
        segments = cleaned[1:].split("/")
        wrong_method = False
        for route in self._routes:
            params = route.match(segments)
            if params is None:
                continue
            handler = route.methods.get(request.method)
            if handler is None:
                wrong_method = True
                continue
            if is_browser(request):
                return BROWSER_FORBIDDEN
            return await self._run(handler, request, params)
        return METHOD_NOT_ALLOWED if wrong_method else NOT_FOUND

    async def _run(self, handler: Handler, request: Request, params: Params) -> Reply:
        try:
            async with self._lock:
                return await handler(request, params)
        except HttpError as error:
            return Reply.error(error)
        except Exception as error:
            log.exception("%s %s failed", request.method, request.path)
            message = f"{type(error).__name__}: {error}"
            return Reply.error(ToxiproxyError(message, 500))

    # -- handlers, one per route and method ---------------------------------------------------

    async def _proxy_index(self, request: Request, params: Params) -> Reply:
        return Reply.json({name: p.to_json() for name, p in self.engine.proxies.items()})

    async def _proxy_create(self, request: Request, params: Params) -> Reply:
        proxy = await self.engine.create(parse_json(request.body))
        return Reply.json(proxy.to_json(), 201)

    async def _populate(self, request: Request, params: Params) -> Reply:
        """Toxiproxy answers populate errors as JSON with ``"proxies": null`` beside them."""
        try:
            proxies = await self.engine.populate(parse_json(request.body))
        except HttpError as error:
            return Reply.json({**error.to_json(), "proxies": None}, error.status)
        return Reply.json({"proxies": [proxy.to_json() for proxy in proxies]}, 201)

    async def _proxy_show(self, request: Request, params: Params) -> Reply:
        return Reply.json(self.engine.get(params["proxy"]).to_json())

    async def _proxy_update(self, request: Request, params: Params) -> Reply:
        self.engine.get(params["proxy"])  # an unknown proxy is a 404 whatever the body
        proxy = await self.engine.update(params["proxy"], parse_json(request.body))
        return Reply.json(proxy.to_json())

    async def _proxy_delete(self, request: Request, params: Params) -> Reply:
        await self.engine.delete(params["proxy"])
        return NO_CONTENT

    async def _toxic_index(self, request: Request, params: Params) -> Reply:
        proxy = self.engine.get(params["proxy"])
        return Reply.json([toxic.to_json() for toxic in proxy.ordered_toxics()])

    async def _toxic_create(self, request: Request, params: Params) -> Reply:
        self.engine.get(params["proxy"])
        toxic = self.engine.add_toxic(params["proxy"], parse_json(request.body))
        return Reply.json(toxic.to_json())

    async def _toxic_show(self, request: Request, params: Params) -> Reply:
        return Reply.json(self.engine.get_toxic(params["proxy"], params["toxic"]).to_json())

    async def _toxic_update(self, request: Request, params: Params) -> Reply:
        self.engine.get_toxic(params["proxy"], params["toxic"])
        toxic = self.engine.update_toxic(params["proxy"], params["toxic"], parse_json(request.body))
        return Reply.json(toxic.to_json())

    async def _toxic_delete(self, request: Request, params: Params) -> Reply:
        self.engine.remove_toxic(params["proxy"], params["toxic"])
        return NO_CONTENT

    async def _reset(self, request: Request, params: Params) -> Reply:
        await self.engine.reset()
        return NO_CONTENT

    async def _version(self, request: Request, params: Params) -> Reply:
        body = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()
        return Reply(200, body, "application/json;charset=utf-8")

    async def _metrics(self, request: Request, params: Params) -> Reply:
        text = self.engine.metrics() + process_metrics()
        return Reply(200, text.encode(), METRICS_TYPE)


# -- running on a background thread ----------------------------------------------------------


@final
class ServerThread:
    """An engine and its API on a private event loop in a daemon thread, for in-process
    use: ``url = server.start()``, then any Toxiproxy client; ``stop()`` closes it all."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = None, fast: bool = True
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.fast = fast
        self.engine: Engine | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Start the thread and return the API's URL once it is listening."""
        if self._thread is not None:
            raise RuntimeError("this ServerThread was already started")
        self._thread = threading.Thread(
            target=run, args=(self._main(), self.fast), name="pytest-chaos-proxy", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the proxy API did not start within {timeout} s")
        if self._error is not None:
            raise self._error
        return self.url

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:40123``."""
        if self._url is None:
            raise RuntimeError("the ServerThread has not started")
        return self._url

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coroutine`` on the server's loop (engine methods must) and return its result."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the ServerThread is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Close every proxy, the API and the loop, and wait for the thread to end."""
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is None or stopping is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the proxy thread did not stop within {timeout} s")
        self._loop = None

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _main(self) -> None:
        engine = self.engine = Engine(seed=self.seed)
        api = ApiServer(engine)
        try:
            host, port = await api.start(self.host, self.port)
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._url = url_for(host, port)
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await api.close()
            await engine.close()
