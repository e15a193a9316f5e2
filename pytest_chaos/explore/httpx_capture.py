"""Every httpx client a test creates, seen and broken by the explorer.

While installed, :class:`HttpCapture` wraps the transport of each new ``httpx.Client`` and
``httpx.AsyncClient`` (and of their mounts): first a recording transport, then
``chaos_http``'s fault transport. A request is the test's *own* when the code that made it
is the test's (a test module or a conftest.py: the test talking to the system); it belongs
to a *dependency* when the code under test made it (an in-process server handling the
test's request, a client library the test calls). Libraries installed in site-packages
and the standard library are neither: the code that called them decides. Dependencies are
named so that the name survives a new run on new ports: by the service or proxy that
listens on the port, otherwise by host.
"""

from __future__ import annotations

import contextvars
import re
import sys
import sysconfig
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, final

import httpx

from pytest_chaos.core.faultlog import ActiveFault, FaultLog
from pytest_chaos.explore.catalogue import RETRY_AFTER_S
from pytest_chaos.explore.cells import Dependency, FaultRef
from pytest_chaos.explore.recording import Usage
from pytest_chaos.inject.http import ChaosHTTP
from pytest_chaos.inject.monkey import ChaosConfig, ChaosMonkey

#: The dependency the request in flight belongs to (None: the test's own), for fault rules.
_TARGET: contextvars.ContextVar[Dependency | None] = contextvars.ContextVar(
    "chaos_explore_target", default=None
)
#: Path segments that are identities, not routes: numbers, UUIDs, long hex strings.
_IDENTITY = re.compile(r"\A(?:\d+|[0-9a-fA-F-]{32,36}|[0-9a-fA-F]{16,})\Z")
#: Code that makes requests for others: whoever called it decides whose request it is.
_LIBRARIES = tuple(
    {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_PACKAGE = __file__.rsplit("/explore/", 1)[0] + "/"


def path_pattern(path: str) -> str:
    """``/orders/42/items`` -> ``/orders/{id}/items``: one endpoint whatever the ids."""
    return "/".join("{id}" if _IDENTITY.match(part) else part for part in path.split("/"))


@final
class HttpCapture:
    """The httpx traffic of one run: what it recorded, and the HTTP faults it applies.

    ``host_name`` names a ``host:port`` (a service's or proxy's name; None: the host
    itself); ``ignored`` says whether a ``host:port`` is the chaos machinery's own (the
    Toxiproxy API), whose clients are left alone; ``is_test_file`` whether a source file
    is the test's own code.
    """

    def __init__(
        self,
        *,
        seed: int,
        host_name: Callable[[str], str | None],
        ignored: Callable[[str], bool],
        is_test_file: Callable[[str], bool],
    ) -> None:
        self._host_name = host_name
        self._ignored = ignored
        self._is_test_file = is_test_file
        monkey = ChaosMonkey(ChaosConfig(enabled=True, failure_rate=1.0), seed=seed, log=FaultLog())
        self.http = ChaosHTTP(monkey)
        self._lock = threading.Lock()
        self._recording = False
        self._uses: Counter[Dependency] = Counter()
        self._outcomes: defaultdict[Dependency, set[str]] = defaultdict(set)
        self.own: set[str] = set()
        self.last_own_status: int | None = None
        self._faults: list[ActiveFault] = []
        self._restore: list[Callable[[], None]] = []

    # -- installing ------------------------------------------------------------------------

    def install(self) -> None:
        """Wrap every client created from now on (until :meth:`uninstall`)."""
        for cls, asynchronous in ((httpx.Client, False), (httpx.AsyncClient, True)):
            self._patch(cls, asynchronous)

    def _patch(self, cls: type[Any], asynchronous: bool) -> None:
        original = cls.__init__
        capture = self

        def __init__(client: Any, *args: Any, **kwargs: Any) -> None:
            original(client, *args, **kwargs)
            capture.wrap(client, asynchronous)

        cls.__init__ = __init__
        self._restore.append(lambda: setattr(cls, "__init__", original))

    def uninstall(self) -> None:
        while self._restore:
            self._restore.pop()()

    def wrap(self, client: Any, asynchronous: bool) -> None:
        """Put the recording and fault transports in front of ``client``'s transports,
        unless it talks to the chaos machinery."""
        base = client.base_url
        if base.host and self._ignored(_host_port(base)):
            return
        wrap = self._wrap_async if asynchronous else self._wrap_sync
        client._transport = wrap(client._transport)
        client._mounts = {
            pattern: None if transport is None else wrap(transport)
            for pattern, transport in client._mounts.items()
        }

    def _wrap_sync(self, transport: httpx.BaseTransport) -> httpx.BaseTransport:
        return _RecordingTransport(self, self.http.transport(transport))

    def _wrap_async(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return _AsyncRecordingTransport(self, self.http.async_transport(transport))

    # -- recording -------------------------------------------------------------------------

    def start(self) -> None:
        """Record from now on."""
        with self._lock:
            self._recording = True

    def stop(self) -> None:
        with self._lock:
            self._recording = False

    def classify(self, request: httpx.Request) -> Dependency | None:
        """The dependency ``request`` belongs to, or None for the test's own (or the
        machinery's) requests."""
        where = _host_port(request.url)
        if self._ignored(where) or self._made_by_test():
            return None
        host = self._host_name(where) or _plain_host(request.url)
        return Dependency("http", f"{request.method} {host}{path_pattern(request.url.path)}")

    def _made_by_test(self) -> bool:
        """Whether the code that made the request in progress is the test's: the first
        frame, going out from httpx, that is neither a library's nor this package's."""
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if not filename.startswith(_LIBRARIES) and not filename.startswith(_PACKAGE):
                return self._is_test_file(filename)
            frame = frame.f_back
        return False

    @contextmanager
    def request(self, request: httpx.Request) -> Iterator[Callable[[str], None]]:
        """Around one request: yields the function that records its outcome."""
        dependency = self.classify(request)
        own = dependency is None and not self._ignored(_host_port(request.url))
        target = _TARGET.set(dependency)

        def outcome(text: str) -> None:
            self._note(request, dependency, own, text)

        try:
            yield outcome
        finally:
            _TARGET.reset(target)

    def _note(
        self, request: httpx.Request, dependency: Dependency | None, own: bool, text: str
    ) -> None:
        with self._lock:
            if not self._recording:
                return
            if dependency is not None:
                self._uses[dependency] += 1
                self._outcomes[dependency].add(text)
            elif own:
                self.own.add(f"{request.method} {path_pattern(request.url.path)} -> {text}")
                self.last_own_status = int(text) if text.isdigit() else None

    def usages(self) -> list[Usage]:
        with self._lock:
            return [
                Usage(dependency, uses=count, outcomes=frozenset(self._outcomes[dependency]))
                for dependency, count in self._uses.items()
            ]

    # -- faults ----------------------------------------------------------------------------

    def apply(self, fault: FaultRef) -> None:
        """Put ``fault`` (an ``http`` fault of the catalogue) on every request to its
        dependency, until :meth:`end_faults`."""
        dependency = fault.dependency

        def when(request: httpx.Request) -> bool:
            return _TARGET.get() == dependency

        http = self.http
        make: dict[str, Callable[[], ActiveFault]] = {
            "500": lambda: http.status(500, when=when),
            "503": lambda: http.status(503, when=when),
            "429": lambda: http.status(429, retry_after=RETRY_AFTER_S, when=when),
            "connect-error": lambda: http.connect_error(when=when),
            "read-timeout": lambda: http.read_timeout(delivered=True, when=when),
            "truncated-body": lambda: http.truncate(0, when=when),
        }
        self._faults.append(make[fault.fault]())

    def end_faults(self) -> None:
        while self._faults:
            self._faults.pop().end()


class _RecordingTransport(httpx.BaseTransport):
    def __init__(self, capture: HttpCapture, wrapped: httpx.BaseTransport) -> None:
        self.capture = capture
        self.wrapped = wrapped

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.capture.request(request) as outcome:
            try:
                response = self.wrapped.handle_request(request)
            except httpx.HTTPError as error:
                outcome(type(error).__name__)
                raise
            outcome(str(response.status_code))
            return response

    def close(self) -> None:
        self.wrapped.close()


class _AsyncRecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, capture: HttpCapture, wrapped: httpx.AsyncBaseTransport) -> None:
        self.capture = capture
        self.wrapped = wrapped

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with self.capture.request(request) as outcome:
            try:
                response = await self.wrapped.handle_async_request(request)
            except httpx.HTTPError as error:
                outcome(type(error).__name__)
                raise
            outcome(str(response.status_code))
            return response

    async def aclose(self) -> None:
        await self.wrapped.aclose()


def _host_port(url: httpx.URL) -> str:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme, 0)
    return f"{url.host}:{port}"


def _plain_host(url: httpx.URL) -> str:
    """A host as a name: loopback ports change on every run, so they are left out."""
    if url.host in ("127.0.0.1", "localhost", "::1") or url.port is None:
        return url.host
    return f"{url.host}:{url.port}"
