"""An OFREP server for a flag store, with an admin API beside it, on a background thread.

``OfrepServer(store).start()`` serves the OpenFeature Remote Evaluation Protocol
(``/ofrep/v1/evaluate/flags[/{key}]``, see docs/flags.md) so that services under test,
in other processes, read the store's flags through any OFREP provider and get what the
in-process provider (``openfeature.py``) answers: the same context mapping
(``contexts.py``), the same payload-typed values (``payloads.py``), and
``TARGETING_KEY_MISSING`` where Unleash would answer at random. The admin API
(``admin.py``) lets a game-day plan or an operator change flags over HTTP; ``http.py``
holds the HTTP rules (``Allow``, tokens, CORS).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any, final

from pytest_chaos._net.errors import HttpError
from pytest_chaos._net.loops import run, url_for
from pytest_chaos._net.messages import Reply, Request, dump_json, parse_json
from pytest_chaos._net.routes import Params
from pytest_chaos.flags.admin import AdminApi
from pytest_chaos.flags.changes import Change
from pytest_chaos.flags.contexts import to_unleash
from pytest_chaos.flags.http import JSON, Access, FlagHttp, Refusal, Route
from pytest_chaos.flags.payloads import typed_value
from pytest_chaos.flags.store import FlagStore

__all__ = ["OfrepServer", "context_to_unleash", "if_none_match"]

log = logging.getLogger(__name__)

#: OFREP's reason enum; the store's DEFAULT (on, but nothing matched) is not in it.
_OFREP_REASONS = frozenset({"STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"})


def context_to_unleash(context: Mapping[str, Any]) -> Mapping[str, Any]:
    """An OFREP evaluation context as an Unleash context (``ValueError`` names a bad field).

    ``targetingKey`` (a string, if present) is the targeting key; every other field is an
    attribute, of any JSON type, mapped as the in-process provider maps OpenFeature's
    attributes (``contexts.to_unleash``).
    """
    key = context.get("targetingKey")
    if key is not None and not isinstance(key, str):
        raise ValueError(f"targetingKey must be a string, got {key!r}")
    attributes = {name: value for name, value in context.items() if name != "targetingKey"}
    return to_unleash(key, attributes)


def _entity_tags(header: str) -> list[str]:
    """The opaque tags of an ``If-None-Match`` list, weak or strong (RFC 9110 8.8.3)."""
    tags = []
    for item in header.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        if len(item) >= 2 and item[0] == item[-1] == '"':
            tags.append(item[1:-1])
        elif item == "*":
            tags.append("*")
    return tags


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` (RFC 9110 13.1.2) matches the current ``etag``: ``*``, or
    any listed entity tag equal to it by the weak comparison."""
    if header is None:
        return False
    current = etag[2:] if etag.startswith("W/") else etag
    tags = _entity_tags(header)
    return "*" in tags or current.strip('"') in tags


class _Ofrep:
    """The two OFREP routes of one store, and the ETag generation its changes advance."""

    def __init__(self, store: FlagStore) -> None:
        self.store = store
        self.generation = 0
        self._unsubscribe = store.listen(self._changed)

    def _changed(self, change: Change) -> None:
        self.generation += 1

    def detach(self) -> None:
        self._unsubscribe()

    def routes(self) -> list[Route]:
        return [
            Route.of("/ofrep/v1/evaluate/flags", "ofrep", POST=self._bulk),
            Route.of("/ofrep/v1/evaluate/flags/{key}", "ofrep", POST=self._single),
        ]

    @staticmethod
    def _failure(code: str, details: str, key: str | None) -> Refusal:
        body = {"errorCode": code, "errorDetails": details}
        return Refusal(400, body if key is None else {"key": key, **body})

    def _context(self, request: Request, key: str | None = None) -> Mapping[str, Any]:
        try:
            body = parse_json(request.body) if request.body.strip() else {}
        except HttpError as error:  # not JSON: its message says where and why
            raise self._failure("PARSE_ERROR", error.message, key) from None
        if not isinstance(body, dict):
            raise self._failure(
                "INVALID_CONTEXT", f"the body must be a JSON object, got {body!r}", key
            )
        context = body.get("context", {})  # the Python OFREP provider omits an empty one
        if not isinstance(context, dict):
            raise self._failure(
                "INVALID_CONTEXT", f"context must be an object, got {context!r}", key
            )
        try:
            return context_to_unleash(context)
        except ValueError as error:
            raise self._failure("INVALID_CONTEXT", str(error), key) from None

    def result(self, key: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """One flag's evaluation in OFREP's shape (success, or failure with ``errorCode``)."""
        evaluation = self.store.evaluate(key, context, identifier_required=True)
        code = evaluation.error_code
        if code == "FLAG_NOT_FOUND":
            details = f"flag {key!r} was not found"
        elif code == "TARGETING_KEY_MISSING":
            details = (
                f"flag {key!r} hashes on an identifier this context lacks (targetingKey, or "
                "the stickiness field); Unleash would answer at random"
            )
        elif code is not None:
            code, details = "GENERAL", f"evaluating {key!r} failed"
        if code is not None:
            return {"key": key, "errorCode": code, "errorDetails": details}
        metadata: dict[str, Any] = {"reason": evaluation.reason}
        kind = self.store.flag_type(key)
        if kind:
            metadata["type"] = kind
        reason = evaluation.reason if evaluation.reason in _OFREP_REASONS else "UNKNOWN"
        result: dict[str, Any] = {"key": key, "reason": reason, "metadata": metadata}
        if not self.store.has_variants(key):
            result["value"] = evaluation.value
            result["variant"] = "enabled" if evaluation.value else "disabled"
        elif evaluation.variant is None:  # no value: the caller's default applies
            result["variant"] = "disabled"
            if evaluation.value:
                result["reason"] = "UNKNOWN"  # the in-process provider's DEFAULT
        else:
            result["variant"] = evaluation.variant
            result["value"] = typed_value(evaluation.variant, evaluation.payload)
        return result

    async def _single(self, request: Request, params: Params) -> Reply:
        key = params["key"]
        result = self.result(key, self._context(request, key))
        code = result.get("errorCode")
        if code == "FLAG_NOT_FOUND":
            return Reply.json(result, 404)
        if code == "GENERAL":
            return Reply.json({"errorDetails": result["errorDetails"]}, 500)
        if code is not None:
            return Reply.json(result, 400)
        return Reply.json(result)

    async def _bulk(self, request: Request, params: Params) -> Reply:
        context = self._context(request)
        generation = self.generation
        flags = [self.result(key, context) for key in self.store.names()]
        body = dump_json({"flags": flags})
        etag = f'"{generation}-{hashlib.sha256(body).hexdigest()[:20]}"'
        if if_none_match(request.headers.get("if-none-match"), etag):
            return Reply(304, headers=(("ETag", etag),))
        return Reply(200, body, JSON, headers=(("ETag", etag),))


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


@final
class OfrepServer:
    """The OFREP API (and, unless ``admin=False``, the admin API) for ``store``.

    ``listen`` is ``host:port`` (port 0 picks a free one). ``token`` / ``admin_token``:
    bearer tokens the evaluation / admin API then require (none by default).
    ``cors_origins``: browser origins allowed to call the server (``"*"`` for any; none
    by default). Without an ``admin_token`` the admin API changes flags for anyone who
    can connect, so it is served on a loopback host only. ``start()`` returns the server
    once it listens; ``url`` is its base URL (what an OFREP provider is given);
    ``close()`` stops it. Also a context manager.
    """

    def __init__(
        self,
        store: FlagStore,
        listen: str = "127.0.0.1:0",
        *,
        admin: bool = True,
        token: str | None = None,
        admin_token: str | None = None,
        cors_origins: Iterable[str] = (),
    ) -> None:
        self.host, self.port = _split_listen(listen)
        if admin and admin_token is None and not _is_loopback(self.host):
            raise ValueError(
                f"the admin API changes flags without authentication, so it is served on "
                f"loopback only: listen {listen!r} is not a loopback address "
                f"(use 127.0.0.1, ::1 or localhost, an admin_token, or admin=False)"
            )
        for name, value in (("token", token), ("admin_token", admin_token)):
            if value is not None and (not value or value != value.strip()):
                raise ValueError(f"{name} must be a non-empty string without spaces around it")
        self.store = store
        self.admin = admin
        origins = frozenset([cors_origins] if isinstance(cors_origins, str) else cors_origins)
        self.access = Access({"ofrep": token, "admin": admin_token}, origins)
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
        ofrep = _Ofrep(self.store)
        routes = ofrep.routes() + (AdminApi(self.store).routes() if self.admin else [])
        api = FlagHttp(routes, self.access)
        try:
            host, port = await api.start(self.host, self.port)
        except BaseException as error:
            ofrep.detach()
            if isinstance(error, HttpError):  # the HTTP server's wording of a bind error
                error = OSError(f"OFREP server: {error.message}")
            bound.set_exception(error)
            return
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        bound.set_result(url_for(host, port))
        try:
            await self._stop.wait()
        finally:
            ofrep.detach()
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
