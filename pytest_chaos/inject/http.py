"""HTTP faults for httpx: a transport, sync and async, that wraps any other and answers some
requests with a status (503, 429 with Retry-After...), delays them, refuses the connection,
times out the read, or cuts the response body short.

Rules match by host, path and method (shell-style patterns) and strike at a rate, on every
Nth request, for the first N requests or the first T seconds, each decision drawn from the
rule's seeded stream. The rules belong to a :class:`ChaosHTTP`; transports read them on
every request, so rules added after a client was made still apply.
"""

from __future__ import annotations

import asyncio
import fnmatch
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

from ..faults import ActiveFault, FaultRecord
from .monkey import ChaosConfig, ChaosMonkey
from .rules import Injection, Rule, check_keywords
from .trigger import Trigger, latency_range

if TYPE_CHECKING:
    from typing_extensions import Unpack

#: The header every injected response carries, so a reader of logs can tell it apart.
FAULT_HEADER = "x-chaos-fault"


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


@dataclass(frozen=True)
class HttpPlan:
    """What the transport does with one request once the rules have struck: wait
    ``delay_s``; then fail with ``error`` after ``error_after_s``, or answer ``response``,
    or forward the request and cut the body after ``truncate_at`` bytes."""

    delay_s: float = 0.0
    response: httpx.Response | None = None
    error: httpx.TransportError | None = None
    error_after_s: float = 0.0
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
        name = monkey.fault_name(f"http:{kind}:{self.target}")
        super().__init__(name, trigger, monkey.stream(name))
        self.monkey = monkey
        self.kind = kind
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
        url = request.url
        if self.methods is not None and request.method not in self.methods:
            return False
        if self.host is not None:
            where = f"{url.host}:{url.port}" if ":" in self.host else url.host
            if not fnmatch.fnmatchcase(where, self.host):
                return False
        if self.path is not None and not fnmatch.fnmatchcase(url.path, self.path):
            return False
        return self.when is None or bool(self.when(request))

    def strike(self, request: httpx.Request, plan: HttpPlan) -> HttpPlan:
        """The plan with this rule's fault added when it strikes this request."""
        drawn = self.draw(self._draw_latency)
        if drawn is None:
            return plan
        call, delay_ms = drawn
        self.monkey.record(
            Injection(
                kind=self.kind,
                target=f"{request.method} {request.url}",
                fault=self.name,
                call=call,
                at=time.time(),
                latency_ms=delay_ms,
                details={k: v for k, v in self.details.items() if k != "latency_ms"},
                dry_run=self.monkey.dry_run,
            )
        )
        if self.monkey.dry_run:
            return plan
        return self._act(request, replace(plan, delay_s=plan.delay_s + delay_ms / 1000))

    def _draw_latency(self, rng: Any) -> float:
        span = self.details.get("latency_ms")
        if span is None:
            return 0.0
        low, high = span
        return float(low if low == high else rng.uniform(low, high))


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
        self, *, after_s: float | None = None, **match: Unpack[RequestMatch]
    ) -> ActiveFault:
        """Fail matching requests with ``httpx.ReadTimeout`` after ``after_s`` seconds
        (default: the request's own read timeout, as a silent server would)."""
        if after_s is not None and (
            isinstance(after_s, bool) or not isinstance(after_s, (int, float)) or after_s < 0
        ):
            raise ValueError(f"after_s={after_s!r}: use a number of seconds, 0 or more")

        def act(request: httpx.Request, plan: HttpPlan) -> HttpPlan:
            wait = after_s if after_s is not None else _read_timeout(request)
            error = httpx.ReadTimeout(f"[chaos] read timed out after {wait} s", request=request)
            return replace(plan, error=error, error_after_s=wait)

        return self._add("read_timeout", act, {"after_s": after_s}, match)

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
        return self.monkey.register(rule, record, lambda: self._remove(rule))

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
                plan = rule.strike(request, plan or HttpPlan())
                if plan.ends:
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
        client = httpx.Client(transport=self.transport(kwargs.pop("transport", None)), **kwargs)
        self._clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` through these rules; use it with ``async with``."""
        return httpx.AsyncClient(
            transport=self.async_transport(kwargs.pop("transport", None)), **kwargs
        )

    @property
    def injections(self) -> list[Injection]:
        """The requests these rules struck (and, sharing the monkey, its function faults)."""
        return self.monkey.injections

    def undo(self) -> list[BaseException]:
        """End every rule and close the clients :meth:`client` made."""
        errors = self.monkey.undo()
        for client in self._clients:
            client.close()
        self._clients.clear()
        return errors


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
            time.sleep(plan.delay_s)
        if plan.error is not None:
            if plan.error_after_s > 0:
                time.sleep(plan.error_after_s)
            raise plan.error
        if plan.response is not None:
            return plan.response
        return plan.finish(self.wrapped.handle_request(request), request)

    def close(self) -> None:
        self.wrapped.close()


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
            await asyncio.sleep(plan.delay_s)
        if plan.error is not None:
            if plan.error_after_s > 0:
                await asyncio.sleep(plan.error_after_s)
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
