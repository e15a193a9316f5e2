"""What one request of a load does: an HTTP request (httpx), a TCP exchange, or a call of a
function, each a frozen description that a run opens as a session on the load's loop."""

from __future__ import annotations

import asyncio
import inspect
import math
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, final

import httpx

#: The User-Agent of HTTP load, unless the headers give another.
USER_AGENT = "pytest-chaos-load"


def default_http_ok(response: httpx.Response) -> bool:
    """The default verdict on an HTTP response: the service answered and was not overloaded
    or broken, i.e. any status below 500 except 429 (Too Many Requests). A 404 or 400 is the
    client's doing, so it counts as ok; pass ``ok=`` to be stricter."""
    return response.status_code < 500 and response.status_code != 429


class LoadTarget(ABC):
    """What one request does. A target is a frozen description; each run opens a
    :class:`Session` of it in the load's event loop."""

    timeout: float

    @property
    def deadline_s(self) -> float:
        """How long a request may run before the generator gives up on it (``"Timeout"``)."""
        return self.timeout

    @abstractmethod
    def session(self, concurrency: int) -> Session:
        """The per-run state: clients, executors."""

    @abstractmethod
    def describe(self) -> str:
        """A short human description, for reprs and reports."""


class Session:
    """A target's state during one run, used only from the load's event loop. The hooks
    other than :meth:`fire` do nothing unless a target needs them."""

    async def setup(self) -> None:
        """Once, before the schedule starts."""

    async def open(self) -> Any:
        """A new lane's connection state (its client, for HTTP)."""
        return None

    async def fire(self, conn: Any) -> tuple[bool, str]:
        """One request on a lane: ``(ok, outcome)``; exceptions are errors named by class."""
        raise NotImplementedError

    async def close(self, conn: Any) -> None:
        """A lane is done with ``conn``."""

    async def teardown(self, abandoned: bool) -> None:
        """Once, after the last lane closed; ``abandoned`` when a request was given up."""


def _check_timeout(timeout: float) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _check_ok(ok: object) -> None:
    if ok is not None and not callable(ok):
        raise TypeError(f"ok must be a callable returning a bool, or None, got {ok!r}")


@final
@dataclass(frozen=True)
class HttpTarget(LoadTarget):
    """One HTTP request per load request, sent with httpx over the lane's keep-alive
    connection; the outcome is the status code (or the httpx exception's class name), the
    verdict ``ok(response)``. Redirects are not followed, and proxy settings from the
    environment are not used (``trust_env=False``): load goes straight to the target."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] | None = None
    content: bytes | str | None = None
    timeout: float = 5.0
    ok: Callable[[httpx.Response], bool] | None = None

    def __post_init__(self) -> None:
        try:
            parsed = httpx.URL(self.url)
        except Exception:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"url must be an absolute http:// or https:// URL, got {self.url!r}")
        if not isinstance(self.method, str) or not self.method.isalpha():
            raise ValueError(f"method must be an HTTP method such as 'GET', got {self.method!r}")
        object.__setattr__(self, "method", self.method.upper())
        if isinstance(self.content, str):
            object.__setattr__(self, "content", self.content.encode())
        elif self.content is not None and not isinstance(self.content, bytes):
            raise TypeError(f"content must be bytes, str or None, got {self.content!r}")
        object.__setattr__(self, "timeout", _check_timeout(self.timeout))
        _check_ok(self.ok)

    @property
    def deadline_s(self) -> float:
        # httpx times connect, write, read and pool separately, each with ``timeout``, and
        # names the one that ran out; the overall deadline only stops a response that keeps
        # trickling in, so it is generous enough never to race them.
        return 2 * self.timeout

    def session(self, concurrency: int) -> Session:
        return _HttpSession(self)

    def describe(self) -> str:
        return f"{self.method} {self.url}"


class _HttpSession(Session):
    """Each lane drives its own ``httpx.AsyncHTTPTransport`` (one keep-alive connection)
    with a request built once: the transport is the layer under ``httpx.AsyncClient``, and
    skipping the client's redirect, cookie, auth and hook machinery, which a load does not
    use, sends about 30% more requests per CPU second (BENCHMARKS.md)."""

    def __init__(self, target: HttpTarget) -> None:
        self.target = target
        self.ok = target.ok or default_http_ok
        self.verify: ssl.SSLContext | None = None

    async def setup(self) -> None:
        # Each lane's transport would otherwise load the CA bundle again (~15 ms each).
        import certifi

        self.verify = ssl.create_default_context(cafile=certifi.where())
        # The first transport and the first request of a process import httpcore and
        # anyio's backend: ~70 ms, which would otherwise land on the first requests of the
        # schedule as lag (and open lanes for nothing).
        await self._transport().aclose()
        try:
            import anyio._backends._asyncio  # noqa: F401
            import httpcore._backends.anyio  # noqa: F401
        except ImportError:  # other versions lay out their modules differently
            pass

    def _transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(
            verify=self.verify if self.verify is not None else True,
            trust_env=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    async def open(self) -> tuple[httpx.AsyncHTTPTransport, httpx.Request]:
        target = self.target
        headers = {"user-agent": USER_AGENT, "accept": "*/*", **(target.headers or {})}
        request = httpx.Request(
            target.method,
            target.url,
            headers=headers,
            content=target.content,
            extensions={"timeout": httpx.Timeout(target.timeout).as_dict()},
        )
        return self._transport(), request

    async def fire(self, conn: tuple[httpx.AsyncHTTPTransport, httpx.Request]) -> tuple[bool, str]:
        transport, request = conn
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        response.request = request  # for an ``ok`` that looks at it
        return bool(self.ok(response)), str(response.status_code)

    async def close(self, conn: tuple[httpx.AsyncHTTPTransport, httpx.Request]) -> None:
        await conn[0].aclose()


@final
@dataclass(frozen=True)
class TcpTarget(LoadTarget):
    """One TCP connection per load request: connect to ``host:port``, send ``payload``,
    read the reply when ``expect`` asks for one (a number of bytes, or the exact bytes),
    close. The outcome is ``"ok"``, ``"mismatch"`` (other bytes than expected) or the
    exception's class name (``ConnectionRefusedError``, ``IncompleteReadError``...)."""

    address: str
    payload: bytes = b""
    expect: int | bytes | None = None
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.address, str):
            raise TypeError(f"address must be a 'host:port' string, got {self.address!r}")
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"address must be 'host:port', got {self.address!r}")
        if not isinstance(self.payload, bytes):
            raise TypeError(f"payload must be bytes, got {self.payload!r}")
        expect = self.expect
        if not (expect is None or isinstance(expect, bytes)) and (
            isinstance(expect, bool) or not isinstance(expect, int) or expect < 0
        ):
            raise ValueError(
                f"expect must be a byte count >= 0, the bytes expected, or None, "
                f"got {self.expect!r}"
            )
        object.__setattr__(self, "timeout", _check_timeout(self.timeout))

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def session(self, concurrency: int) -> Session:
        return _TcpSession(self)

    def describe(self) -> str:
        return f"tcp://{self.address}"


class _TcpSession(Session):
    def __init__(self, target: TcpTarget) -> None:
        self.target = target

    async def fire(self, conn: Any) -> tuple[bool, str]:
        target = self.target
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            if target.payload:
                writer.write(target.payload)
                await writer.drain()
            expect = target.expect
            if isinstance(expect, bytes):
                if await reader.readexactly(len(expect)) != expect:
                    return False, "mismatch"
            elif expect:
                await reader.readexactly(expect)
            return True, "ok"
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


@dataclass(frozen=True)
class CallTarget(LoadTarget):
    """One call of ``fn()`` per load request: a coroutine function is awaited in the
    load's loop, any other callable runs in a pool of ``concurrency`` threads. The outcome is
    ``"ok"``, ``"error"`` when ``ok(result)`` says no, or the exception's class name."""

    fn: Callable[[], Any]
    timeout: float = 5.0
    ok: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"fn must be a callable taking no arguments, got {self.fn!r}")
        object.__setattr__(self, "timeout", _check_timeout(self.timeout))
        _check_ok(self.ok)

    @property
    def is_async(self) -> bool:
        fn = self.fn
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
        )

    def session(self, concurrency: int) -> Session:
        return _CallSession(self, concurrency)

    def describe(self) -> str:
        return f"call {getattr(self.fn, '__qualname__', repr(self.fn))}"


class _CallSession(Session):
    def __init__(self, target: CallTarget, concurrency: int) -> None:
        self.target = target
        self.concurrency = concurrency
        self.executor: ThreadPoolExecutor | None = None

    async def setup(self) -> None:
        if not self.target.is_async:
            self.executor = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="pytest-chaos-load-call"
            )

    async def fire(self, conn: Any) -> tuple[bool, str]:
        if self.executor is None:
            result = await self.target.fn()
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.executor, self.target.fn)
            if inspect.isawaitable(result):  # a plain function that returned a coroutine
                result = await result
        if self.target.ok is not None and not self.target.ok(result):
            return False, "error"
        return True, "ok"

    async def teardown(self, abandoned: bool) -> None:
        if self.executor is not None:
            # A call given up on still holds its thread; waiting for it could take forever.
            self.executor.shutdown(wait=not abandoned, cancel_futures=True)
