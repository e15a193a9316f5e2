"""HTTP faults for httpx: a transport, sync and async, that wraps any other and answers some
requests with a status (503, 429 with Retry-After...), delays them, refuses the connection,
times out the read, or cuts the response body short.

Rules match by host, path and method (shell-style patterns) and strike at a rate, on every
Nth request, for the first N requests or the first T seconds, each decision drawn from the
rule's seeded stream. The rules belong to a :class:`ChaosHTTP`; transports read them on
every request, so rules added after a client was made still apply.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from asyncio import sleep as async_sleep
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from time import sleep
from time import time as wall_clock
from typing import TYPE_CHECKING, Any, TypedDict, final

import httpx

from pytest_chaos.core.checks import seconds
from pytest_chaos.core.faultlog import ActiveFault, FaultRecord
from pytest_chaos.inject.monkey import ChaosConfig, ChaosMonkey
from pytest_chaos.inject.rules import Injection, Rule, check_keywords
from pytest_chaos.inject.trigger import Trigger, latency_range

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: The header every injected response carries, so a reader of logs can tell it apart.
FAULT_HEADER = "x-chaos-fault"
#: The rules that end a request: it never gets an answer from the server.
ENDING_KINDS = frozenset({"status", "connect_error", "read_timeout"})
#: The port of a URL that names none, for ``host="name:port"`` rules.
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: ``httpx.Client`` arguments that configure its transport: httpx ignores them when a
#: transport is given, so :meth:`ChaosHTTP.client` hands them to the transport it wraps.
_TRANSPORT_SETTINGS = ("verify", "cert", "http1", "http2", "limits", "proxy")


class RequestMatch(TypedDict, total=False):
    """Which requests a rule considers, and which of those it strikes."""

    host: str | None
    path: str | None
    method: str | Iterable[str] | None
    when: Callable[[httpx.Request], bool] | None
    rate: float | None
    every: int | None
    first: int | None
    for_s: float | None


@final
@dataclass(frozen=True)
class HttpPlan:
    """What the transport does with one request once the rules have struck: wait
    ``delay_s``; then fail with ``error`` after ``error_after_s`` (having delivered the
    request first if ``deliver``), or answer ``response``, or forward the request and cut
    the body after ``truncate_at`` bytes."""

    delay_s: float = 0.0
    response: httpx.Response | None = None
    error: httpx.TransportError | None = None
    error_after_s: float = 0.0
    deliver: bool = False
    truncate_at: int | None = None

    @property
    def ends(self) -> bool:
        """Whether the request stops here (it never reaches the wrapped transport)."""
        return self.response is not None or self.error is not None

    def finish(self, response: httpx.Response, request: httpx.Request) -> httpx.Response:
        if self.truncate_at is None:
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_TruncatedStream(response.stream, self.truncate_at, request),
            extensions=response.extensions,
            request=request,
        )


@final
class HttpFault(Rule):
    """One rule: the requests it matches, and what it does to those it strikes."""

    def __init__(
        self,
        monkey: ChaosMonkey,
        kind: str,
        act: Callable[[httpx.Request, HttpPlan], HttpPlan],
        details: dict[str, Any],
        match: RequestMatch,
    ) -> None:
        self.host = _pattern("host", match.get("host"))
        self.path = _pattern("path", match.get("path"))
        self._host_matches = _HostPattern(self.host) if self.host is not None else None
        self._path_matches = _compiled(self.path) if self.path is not None else None
        self.methods = _methods(match.get("method"))
        when = match.get("when")
        if when is not None and not callable(when):
            raise TypeError(f"when={when!r}: use a function that takes an httpx.Request")
        self.when = when
        trigger = Trigger.build(
            rate=match.get("rate"),
            every=match.get("every"),
            first=match.get("first"),
            for_s=match.get("for_s"),
            default_rate=monkey.config.failure_rate,
        )
        self.target = self._describe_match()
        # named by kind and order, not by the match (which may hold a port that changes
        # from run to run), so that a seed replays the rule's pattern
        name = monkey.fault_name(f"http.{kind}")
        super().__init__(name, trigger, monkey.seed)
        self.monkey = monkey
        self.kind = kind
        self.ends = kind in ENDING_KINDS
        self._act = act
        self.details = details

    def _describe_match(self) -> str:
        parts = [
            f"{key}={value}"
            for key, value in (("host", self.host), ("path", self.path))
            if value is not None
        ]
        if self.methods is not None:
            parts.append("method=" + ",".join(sorted(self.methods)))
        return " ".join(parts) or "any request"

    def matches(self, request: httpx.Request) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return False
        url = request.url
        if self._host_matches is not None and not self._host_matches(url):
            return False
        if self._path_matches is not None and not self._path_matches(url.path):
            return False
        return self.when is None or bool(self.when(request))

    def strike(self, request: httpx.Request, plan: HttpPlan) -> HttpPlan | None:
        """The plan with this rule's fault added when it strikes this request (under dry
        run, the plan unchanged); None when it does not strike."""
        drawn = self.draw(self._draw_latency)
        if drawn is None:
            return None
        call, delay_ms = drawn
        acted = self._act(request, replace(plan, delay_s=plan.delay_s + delay_ms / 1000))
        details = {k: v for k, v in self.details.items() if k != "latency_ms"}
        if "after_s" in details:
            details["after_s"] = acted.error_after_s  # the wait actually used
        self.monkey.record(
            Injection(
                kind=self.kind,
                target=f"{request.method} {request.url}",
                fault=self.name,
                call=call,
                at=wall_clock(),
                latency_ms=delay_ms,
                details=details,
                dry_run=self.monkey.dry_run,
            )
        )
        return plan if self.monkey.dry_run else acted

    def _draw_latency(self, rng: Any) -> float:
        span = self.details.get("latency_ms")
        if span is None:
            return 0.0
        low, high = span
        return float(low if low == high else rng.uniform(low, high))


@final
class ChaosHTTP:
    """HTTP fault rules, and the transports and clients that apply them.

    ``monkey`` supplies the seed, the on/off switch, the log and the record of injections
    (a fresh, enabled one that strikes every matching request unless told otherwise).
    Each rule method returns the fault, which ends with ``with``, ``.end()`` or
    :meth:`undo`.
    """

    def __init__(self, monkey: ChaosMonkey | None = None) -> None:
        self.monkey = (
            monkey
            if monkey is not None
            else ChaosMonkey(ChaosConfig(enabled=True, failure_rate=1.0))
        )
        self._rules: tuple[HttpFault, ...] = ()
        self._lock = threading.Lock()
        self._clients: list[httpx.Client] = []
        self._faults: list[ActiveFault] = []

    def __repr__(self) -> str:
        return f"<ChaosHTTP {len(self._rules)} rules, seed={self.monkey.seed}>"

    # -- rules -----------------------------------------------------------------------------

    def status(
        self,
        code: int = 503,
        *,
        retry_after: int | str | None = None,
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        **match: Unpack[RequestMatch],
    ) -> ActiveFault:
        """Answer matching requests with ``code`` (the request never reaches the server),
        with a ``Retry-After`` header when ``retry_after`` is given (seconds or an HTTP
        date) and ``body`` (default: a line naming the fault)."""
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"status code {code!r}: use an HTTP status from 100 to 599")
        if retry_after is not None and "retry-after" in httpx.Headers(headers or {}):
            raise ValueError(
                f"retry_after={retry_after!r} and a Retry-After header: give one of the two"
            )
        answer = {
            "content-type": "text/plain; charset=utf-8",
            **({"retry-after": _retry_after(retry_after)} if retry_after is not None else {}),
            **dict(headers or {}),
            FAULT_HEADER: "status",
        }
        content = body if body is not None else f"chaos: injected HTTP {code}\n"
        payload = content.encode() if isinstance(content, str) else bytes(content)

        def act(request: httpx.Request, plan: HttpPlan) -> HttpPlan:
            response = httpx.Response(code, headers=answer, content=payload, request=request)
            return replace(plan, response=response)

        details: dict[str, Any] = {"status": code}
        if retry_after is not None:
            details["retry_after"] = answer["retry-after"]
        return self._add("status", act, details, match)

    def latency(
        self, ms: float | tuple[float, float], **match: Unpack[RequestMatch]
    ) -> ActiveFault:
        """Delay matching requests by ``ms`` milliseconds (or a ``(low, high)`` range)
        before they go on."""
        span = latency_range(ms, "ms")
        return self._add("latency", lambda request, plan: plan, {"latency_ms": span}, match)

    def connect_error(self, **match: Unpack[RequestMatch]) -> ActiveFault:
        """Fail matching requests with ``httpx.ConnectError``, as a refused connection does."""

        def act(request: httpx.Request, plan: HttpPlan) -> HttpPlan:
            error = httpx.ConnectError("[chaos] connection refused (injected)", request=request)
            return replace(plan, error=error)

        return self._add("connect_error", act, {}, match)

    def read_timeout(
        self,
        *,
        after_s: float | None = None,
        delivered: bool = False,
        **match: Unpack[RequestMatch],
    ) -> ActiveFault:
        """Fail matching requests with ``httpx.ReadTimeout`` after ``after_s`` seconds
        (default: the request's own read timeout, as a silent server would; at once when
        the client has none, rather than hang). With ``delivered=True`` the request first
        reaches the server, which acts on it, and its answer is lost: the case that makes
        retrying a non-idempotent request unsafe."""
        if not isinstance(delivered, bool):
            raise ValueError(f"delivered={delivered!r}: use True or False")
        if after_s is not None:
            seconds("after_s", after_s, allow_zero=True)

        def act(request: httpx.Request, plan: HttpPlan) -> HttpPlan:
            wait = after_s if after_s is not None else _read_timeout(request)
            error = httpx.ReadTimeout(f"[chaos] read timed out after {wait} s", request=request)
            return replace(plan, error=error, error_after_s=wait, deliver=delivered)

        details = {"after_s": after_s, **({"delivered": True} if delivered else {})}
        return self._add("read_timeout", act, details, match)

    def truncate(self, after_bytes: int = 0, **match: Unpack[RequestMatch]) -> ActiveFault:
        """Forward matching requests, then end the response body after ``after_bytes``
        bytes with ``httpx.RemoteProtocolError``, as a peer closing early does."""
        if isinstance(after_bytes, bool) or not isinstance(after_bytes, int) or after_bytes < 0:
            raise ValueError(f"after_bytes={after_bytes!r}: use a number of bytes, 0 or more")
        return self._add(
            "truncate",
            lambda request, plan: replace(plan, truncate_at=after_bytes),
            {"after_bytes": after_bytes},
            match,
        )

    def _add(
        self,
        kind: str,
        act: Callable[[httpx.Request, HttpPlan], HttpPlan],
        details: dict[str, Any],
        match: RequestMatch,
    ) -> ActiveFault:
        check_keywords(kind, match, RequestMatch)
        rule = HttpFault(self.monkey, kind, act, details, match)
        with self._lock:
            self._rules = (*self._rules, rule)
        shown = {**details, **rule.trigger.describe()}
        record = FaultRecord(f"http.{kind}", rule.target, shown, self.monkey.dry_run)
        fault = self.monkey.register(rule, record, lambda: self._remove(rule))
        self._faults.append(fault)
        return fault

    def _remove(self, rule: HttpFault) -> None:
        with self._lock:
            self._rules = tuple(r for r in self._rules if r is not rule)

    def plan(self, request: httpx.Request) -> HttpPlan | None:
        """What the armed rules do to ``request``, in the order they were added: delays
        add up, the first rule that ends the request stops the others. None: untouched."""
        if not self.monkey.enabled:
            return None
        plan = None
        for rule in self._rules:
            if rule.armed and rule.matches(request):
                struck = rule.strike(request, plan or HttpPlan())
                if struck is not None:
                    plan = struck
                    if rule.ends:  # also under dry run, so later rules count as for real
                        break
        return plan

    # -- transports and clients ------------------------------------------------------------

    def transport(self, wrapped: httpx.BaseTransport | None = None) -> ChaosTransport:
        """A transport applying these rules in front of ``wrapped`` (a new
        ``httpx.HTTPTransport`` by default), to mount in the application's own client."""
        return ChaosTransport(self, wrapped)

    def async_transport(
        self, wrapped: httpx.AsyncBaseTransport | None = None
    ) -> AsyncChaosTransport:
        """The asyncio twin of :meth:`transport`, for ``httpx.AsyncClient``."""
        return AsyncChaosTransport(self, wrapped)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` through these rules (``transport=`` is wrapped, the other
        arguments are the client's), closed by :meth:`undo` if the test did not."""
        wrapped = kwargs.pop("transport", None)
        settings = _transport_settings(kwargs, wrapped)
        if wrapped is None:
            wrapped = httpx.HTTPTransport(trust_env=kwargs.get("trust_env", True), **settings)
        client = httpx.Client(transport=self.transport(wrapped), **kwargs)
        self._clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` through these rules; use it with ``async with``."""
        wrapped = kwargs.pop("transport", None)
        settings = _transport_settings(kwargs, wrapped)
        if wrapped is None:
            wrapped = httpx.AsyncHTTPTransport(trust_env=kwargs.get("trust_env", True), **settings)
        return httpx.AsyncClient(transport=self.async_transport(wrapped), **kwargs)

    @property
    def injections(self) -> list[Injection]:
        """The requests these rules struck (and, sharing the monkey, its function faults)."""
        return self.monkey.injections

    def undo(self) -> list[BaseException]:
        """End every rule (not the monkey's function faults) and close the clients
        :meth:`client` made; return the errors met on the way."""
        errors: list[BaseException] = []
        while self._faults:
            try:
                self._faults.pop().end()
            except Exception as error:
                errors.append(error)
        for client in self._clients:
            client.close()
        self._clients.clear()
        return errors


@final
class ChaosTransport(httpx.BaseTransport):
    """Applies a :class:`ChaosHTTP`'s rules, then hands the request to ``wrapped``."""

    def __init__(self, faults: ChaosHTTP, wrapped: httpx.BaseTransport | None = None) -> None:
        self.faults = faults
        self.wrapped = wrapped if wrapped is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        plan = self.faults.plan(request)
        if plan is None:
            return self.wrapped.handle_request(request)
        if plan.delay_s > 0:
            sleep(plan.delay_s)
        if plan.error is not None:
            if plan.deliver:
                self.wrapped.handle_request(request).close()
            if plan.error_after_s > 0:
                sleep(plan.error_after_s)
            raise plan.error
        if plan.response is not None:
            return plan.response
        return plan.finish(self.wrapped.handle_request(request), request)

    def close(self) -> None:
        self.wrapped.close()


@final
class AsyncChaosTransport(httpx.AsyncBaseTransport):
    """The asyncio form of :class:`ChaosTransport`."""

    def __init__(self, faults: ChaosHTTP, wrapped: httpx.AsyncBaseTransport | None = None) -> None:
        self.faults = faults
        self.wrapped = wrapped if wrapped is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        plan = self.faults.plan(request)
        if plan is None:
            return await self.wrapped.handle_async_request(request)
        if plan.delay_s > 0:
            await async_sleep(plan.delay_s)
        if plan.error is not None:
            if plan.deliver:
                await (await self.wrapped.handle_async_request(request)).aclose()
            if plan.error_after_s > 0:
                await async_sleep(plan.error_after_s)
            raise plan.error
        if plan.response is not None:
            return plan.response
        return plan.finish(await self.wrapped.handle_async_request(request), request)

    async def aclose(self) -> None:
        await self.wrapped.aclose()


class _TruncatedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that ends after ``limit`` bytes with the error httpx raises when a
    peer closes the connection early; a body no longer than ``limit`` passes whole."""

    def __init__(self, stream: Any, limit: int, request: httpx.Request) -> None:
        self._stream = stream
        self._limit = limit
        self._request = request

    def close(self) -> None:
        """Close the server's stream (also when the body was not read to its end), so its
        connection goes back to the pool."""
        self._stream.close()

    async def aclose(self) -> None:
        await self._stream.aclose()

    def _cut(self, chunk: bytes, sent: int) -> bytes:
        return chunk[: max(0, self._limit - sent)]

    def _error(self, sent: int) -> httpx.RemoteProtocolError:
        return httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body "
            f"([chaos] truncated after {sent} bytes)",
            request=self._request,
        )

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in self._stream:
                part = self._cut(chunk, sent)
                if part:
                    sent += len(part)
                    yield part
                if len(part) < len(chunk):
                    raise self._error(sent)
        finally:
            self._stream.close()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        try:
            async for chunk in self._stream:
                part = self._cut(chunk, sent)
                if part:
                    sent += len(part)
                    yield part
                if len(part) < len(chunk):
                    raise self._error(sent)
        finally:
            await self._stream.aclose()


class _HostPattern:
    """A ``host`` rule: a host pattern, or ``host:port`` (``[v6-address]:port`` for IPv6),
    each part a shell pattern, compiled once."""

    def __init__(self, pattern: str) -> None:
        if pattern.startswith("["):
            host, _, port = pattern[1:].partition("]")
            port = port.removeprefix(":") or "*"
        elif pattern.count(":") == 1:
            host, port = pattern.split(":")
        else:
            host, port = pattern, "*"
        self._host = _compiled(host)
        self._port = None if port == "*" else _compiled(port)

    def __call__(self, url: httpx.URL) -> bool:
        if not self._host(url.host):
            return False
        if self._port is None:
            return True
        return self._port(str(url.port or _DEFAULT_PORTS.get(url.scheme)))


def _compiled(pattern: str) -> Callable[[str], bool]:
    """A matcher for a shell pattern: plain equality when it has no wildcard."""
    if not any(char in pattern for char in "*?["):
        return pattern.__eq__
    regex = re.compile(fnmatch.translate(pattern))
    return lambda text: regex.match(text) is not None


def _pattern(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{name}={value!r}: use a non-empty pattern such as 'api.local' or '/v1/*'"
        )
    return value


def _methods(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Iterable) or not all(isinstance(m, str) and m for m in names):
        raise ValueError(f"method={value!r}: use a method name ('GET') or a list of them")
    methods = frozenset(m.upper() for m in names)
    if not methods:
        raise ValueError(f"method={value!r}: use a method name ('GET') or a list of them")
    return methods


def _transport_settings(kwargs: dict[str, Any], transport: object) -> dict[str, Any]:
    """Take the transport's settings out of a client's ``kwargs``, for the transport the
    rules wrap; with ``transport`` given they would be lost, so they are refused."""
    settings = {name: kwargs.pop(name) for name in _TRANSPORT_SETTINGS if name in kwargs}
    if settings and transport is not None:
        raise TypeError(
            f"{', '.join(settings)} configure the transport; with transport= given, "
            "configure that transport instead"
        )
    return settings


def _retry_after(value: int | str) -> str:
    if isinstance(value, str) and value.strip():
        return value
    seconds = value if isinstance(value, (int, float)) and not isinstance(value, bool) else -1
    if seconds >= 0 and float(seconds).is_integer():
        return str(int(seconds))
    raise ValueError(f"retry_after={value!r}: use whole seconds (0 or more) or an HTTP date")


def _read_timeout(request: httpx.Request) -> float:
    timeouts = request.extensions.get("timeout") or {}
    read = timeouts.get("read")
    return float(read) if read is not None else 0.0
