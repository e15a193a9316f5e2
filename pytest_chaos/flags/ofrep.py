"""An OFREP server for a flag store, with an admin API beside it, on a background thread.

``OfrepServer(store).start()`` serves the OpenFeature Remote Evaluation Protocol
(``/ofrep/v1/evaluate/flags[/{key}]``, see docs/flags.md) so that services under test,
in other processes, read the store's flags through any OFREP provider; the admin API
(``/admin/...``) lets a game-day plan or an operator change them over HTTP. The HTTP
machinery (h11 over asyncio, routing, JSON bodies) is the Toxiproxy API's
(``pytest_chaos.proxy.api``); only the routes and the flag semantics are here.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from pytest_chaos.flags.changes import Change, Evaluation
from pytest_chaos.flags.store import FlagConfigError, FlagStore
from pytest_chaos.proxy.api import (
    ApiServer,
    Handler,
    Params,
    Reply,
    Request,
    Route,
    dump_json,
    parse_json,
    run,
    url_for,
)
from pytest_chaos.proxy.errors import ToxiproxyError

__all__ = ["OfrepServer", "context_to_unleash"]

log = logging.getLogger(__name__)

#: Context fields passed to Unleash as they are; every other field goes to ``properties``.
_UNLEASH_FIELDS = ("userId", "sessionId", "remoteAddress", "environment", "appName", "currentTime")
#: OFREP's reason enum; the store's DEFAULT (on, but no strategy matched) is not in it.
_OFREP_REASONS = frozenset({"STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"})


class _Refusal(Exception):
    """A request answered with a JSON error body and a status (never a 500)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def _invalid_context(details: str, key: str | None = None) -> _Refusal:
    body = {"errorCode": "INVALID_CONTEXT", "errorDetails": details}
    return _Refusal(400, body if key is None else {"key": key, **body})


def context_to_unleash(context: Mapping[str, Any]) -> dict[str, Any]:
    """An OFREP evaluation context as an Unleash context (``ValueError`` names a bad field).

    ``targetingKey`` becomes ``userId``; ``userId``, ``sessionId``, ``remoteAddress``,
    ``environment``, ``appName`` and ``currentTime`` stay as they are; every other field
    goes into ``properties`` as a string (booleans as ``true``/``false``, as Unleash's
    SDKs write them). A field must be a string, number or boolean.
    """
    result: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for name, value in context.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise ValueError(
                f"context field {name!r} must be a string, number or boolean, got {value!r}"
            )
        if name == "targetingKey":
            if not isinstance(value, str):
                raise ValueError(f"targetingKey must be a string, got {value!r}")
            result["userId"] = value
        elif name in _UNLEASH_FIELDS:
            result.setdefault(name, text)
        else:
            properties[name] = text
    if properties:
        result["properties"] = properties
    return result


class _OfrepApi(ApiServer):
    """The OFREP and admin routes over the Toxiproxy API's HTTP server."""

    def __init__(self, store: FlagStore, *, admin: bool) -> None:
        super().__init__(engine=None)  # type: ignore[arg-type]  # no proxies served here
        self.store = store
        self.generation = 0
        self._unsubscribe = store.listen(self._changed)
        routes = [
            Route.of("/ofrep/v1/evaluate/flags", POST=self._bulk),
            Route.of("/ofrep/v1/evaluate/flags/{key}", POST=self._single),
        ]
        if admin:
            routes += [
                Route.of("/admin/flags", GET=self._list),
                Route.of("/admin/flags/{key}", PUT=self._put, DELETE=self._delete),
                Route.of("/admin/flags/{key}/enable", POST=self._enable),
                Route.of("/admin/flags/{key}/disable", POST=self._disable),
                Route.of("/admin/kill", POST=self._kill),
                Route.of("/admin/revive", POST=self._revive),
            ]
        self._routes = routes

    def _changed(self, change: Change) -> None:
        self.generation += 1

    def detach(self) -> None:
        self._unsubscribe()

    async def _run(self, handler: Handler, request: Request, params: Params) -> Reply:
        try:
            return await handler(request, params)
        except _Refusal as refusal:
            return Reply.json(refusal.body, refusal.status)
        except ToxiproxyError as error:  # parse_json's: the body is not JSON
            code = "PARSE_ERROR" if request.path.startswith("/ofrep/") else None
            if code is None:
                return Reply.json({"error": error.message}, 400)
            return Reply.json({"errorCode": code, "errorDetails": error.message}, 400)
        except Exception as error:
            log.exception("%s %s failed", request.method, request.path)
            return Reply.json({"errorDetails": f"{type(error).__name__}: {error}"}, 500)

    # -- OFREP ------------------------------------------------------------------------------

    def _context(self, request: Request, key: str | None = None) -> dict[str, Any]:
        body = parse_json(request.body) if request.body.strip() else {}
        if not isinstance(body, dict):
            raise _invalid_context(f"the body must be a JSON object, got {body!r}", key)
        context = body.get("context", {})  # the Python OFREP provider omits an empty one
        if not isinstance(context, dict):
            raise _invalid_context(f"context must be an object, got {context!r}", key)
        try:
            return context_to_unleash(context)
        except ValueError as error:
            raise _invalid_context(str(error), key) from None

    def _result(self, key: str, context: dict[str, Any]) -> dict[str, Any]:
        evaluation = self.store.evaluate(key, context)
        if evaluation.error_code == "FLAG_NOT_FOUND":
            return {
                "key": key,
                "errorCode": "FLAG_NOT_FOUND",
                "errorDetails": f"flag {key!r} was not found",
            }
        if evaluation.error_code is not None:
            return {
                "key": key,
                "errorCode": "GENERAL",
                "errorDetails": f"evaluating {key!r} failed",
            }
        return self._success(key, context, evaluation)

    def _success(self, key: str, context: dict[str, Any], evaluation: Evaluation) -> dict[str, Any]:
        reason = evaluation.reason if evaluation.reason in _OFREP_REASONS else "UNKNOWN"
        metadata: dict[str, Any] = {"reason": evaluation.reason}
        try:
            raw = self.store.unleash_feature(key)
        except KeyError:  # removed meanwhile
            raw = {}
        if raw.get("type"):
            metadata["type"] = raw["type"]
        has_variants = bool(raw.get("variants")) or any(
            isinstance(s, dict) and s.get("variants") for s in raw.get("strategies") or []
        )
        result: dict[str, Any] = {"key": key, "reason": reason, "metadata": metadata}
        if not has_variants:
            result["value"] = evaluation.value
            result["variant"] = "enabled" if evaluation.value else "disabled"
        elif evaluation.variant is None:
            result["variant"] = "disabled"  # no value: the caller's default applies
        else:
            result["value"] = result["variant"] = evaluation.variant
            payload = self.store.get_variant(key, context).get("payload")
            if isinstance(payload, dict):
                metadata["payloadType"] = str(payload.get("type"))
                metadata["payload"] = str(payload.get("value"))
        return result

    async def _single(self, request: Request, params: Params) -> Reply:
        key = params["key"]
        result = self._result(key, self._context(request, key))
        if result.get("errorCode") == "FLAG_NOT_FOUND":
            return Reply.json(result, 404)
        if "errorCode" in result:
            return Reply.json({"errorDetails": result["errorDetails"]}, 500)
        return Reply.json(result)

    async def _bulk(self, request: Request, params: Params) -> Reply:
        context = self._context(request)
        generation = self.generation
        flags = [self._result(key, context) for key in self.store.names()]
        body = dump_json({"flags": flags})
        etag = f'"{generation}-{hashlib.sha256(body).hexdigest()[:20]}"'
        if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
            return Reply(304, headers=(("ETag", etag),))
        return Reply(200, body, "application/json", headers=(("ETag", etag),))

    # -- admin ------------------------------------------------------------------------------

    def _admin_body(self, request: Request) -> dict[str, Any]:
        body = parse_json(request.body) if request.body.strip() else {}
        if not isinstance(body, dict):
            raise _Refusal(400, {"error": f"the body must be a JSON object, got {body!r}"})
        return body

    def _feature(self, key: str) -> dict[str, Any]:
        try:
            return self.store.unleash_feature(key)
        except KeyError:
            raise _Refusal(404, {"error": f"no flag named {key!r}"}) from None

    def _flag_state(self, key: str) -> Reply:
        return Reply.json({**self._feature(key), "killed": self.store.killed(key)})

    async def _list(self, request: Request, params: Params) -> Reply:
        features = [self.store.unleash_feature(key) for key in self.store.names()]
        return Reply.json({"flags": features, "killed": self.store.killed()})

    async def _put(self, request: Request, params: Params) -> Reply:
        key = params["key"]
        feature = self._admin_body(request)
        if feature.setdefault("name", key) != key:
            message = f"the feature's name {feature['name']!r} is not the key {key!r} in the path"
            raise _Refusal(400, {"error": message})
        existed = key in self.store
        try:
            self.store.set_unleash(feature)
        except FlagConfigError as error:
            raise _Refusal(400, {"error": str(error)}) from None
        return Reply.json(self.store.unleash_feature(key), 200 if existed else 201)

    async def _enable(self, request: Request, params: Params) -> Reply:
        key = params["key"]
        percentage = self._admin_body(request).get("percentage")
        self._feature(key)
        if percentage is not None and (
            isinstance(percentage, bool) or not isinstance(percentage, (int, float))
        ):
            raise _Refusal(400, {"error": f"percentage must be a number, got {percentage!r}"})
        try:
            self.store.enable(key, percentage)
        except FlagConfigError as error:
            raise _Refusal(400, {"error": str(error)}) from None
        return self._flag_state(key)

    async def _disable(self, request: Request, params: Params) -> Reply:
        self._feature(params["key"])
        self.store.disable(params["key"])
        return self._flag_state(params["key"])

    async def _delete(self, request: Request, params: Params) -> Reply:
        self._feature(params["key"])
        self.store.remove(params["key"])
        return Reply(204)

    def _switch_target(self, request: Request) -> str | None:
        flag = self._admin_body(request).get("flag")
        if flag is not None:
            if not isinstance(flag, str):
                raise _Refusal(400, {"error": f"flag must be a flag's name, got {flag!r}"})
            self._feature(flag)
        return flag

    async def _kill(self, request: Request, params: Params) -> Reply:
        flag = self._switch_target(request)
        self.store.kill(flag)
        return Reply.json({"flag": flag, "killed": self.store.killed(flag)})

    async def _revive(self, request: Request, params: Params) -> Reply:
        flag = self._switch_target(request)
        self.store.revive(flag)
        return Reply.json({"flag": flag, "killed": self.store.killed(flag)})


def _split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"listen must be host:port, got {listen!r}")
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OfrepServer:
    """The OFREP API (and, unless ``admin=False``, the admin API) for ``store``.

    ``listen`` is ``host:port`` (port 0 picks a free one). The admin API changes flags
    without authentication, so with it the host must be a loopback address; a server
    for other hosts must be started with ``admin=False``. ``start()`` returns the server
    once it listens; ``url`` is its base URL (what an OFREP provider is given);
    ``close()`` stops it. Also a context manager.
    """

    def __init__(
        self, store: FlagStore, listen: str = "127.0.0.1:0", *, admin: bool = True
    ) -> None:
        self.host, self.port = _split_listen(listen)
        if admin and not _is_loopback(self.host):
            raise ValueError(
                f"the admin API changes flags without authentication, so it is served on "
                f"loopback only: listen {listen!r} is not a loopback address "
                f"(use 127.0.0.1, ::1 or localhost, or admin=False)"
            )
        self.store = store
        self.admin = admin
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        if self._url is None:
            raise RuntimeError("the OFREP server is not running: call start() first")
        return self._url

    def start(self, timeout: float = 10.0) -> OfrepServer:
        """Listen on a daemon thread; returns once listening (raises if it cannot bind)."""
        if self._thread is not None:
            raise RuntimeError("this OfrepServer was already started")
        bound: Future[str] = Future()
        self._thread = threading.Thread(
            target=run, args=(self._serve(bound),), name="pytest-chaos-ofrep", daemon=True
        )
        self._thread.start()
        self._url = bound.result(timeout)
        return self

    async def _serve(self, bound: Future[str]) -> None:
        api = _OfrepApi(self.store, admin=self.admin)
        try:
            host, port = await api.start(self.host, self.port)
        except BaseException as error:
            api.detach()
            if isinstance(error, ToxiproxyError):  # the proxy API's wording of a bind error
                error = OSError(f"OFREP server: {error.message}")
            bound.set_exception(error)
            return
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        bound.set_result(url_for(host, port))
        try:
            await self._stop.wait()
        finally:
            api.detach()
            await api.close()

    def close(self, timeout: float = 10.0) -> None:
        """Stop listening, drop every connection and end the thread (idempotent)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        self._loop = self._stop = None
        self._url = None
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already closed
                pass
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> OfrepServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
