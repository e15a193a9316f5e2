"""A typed client for any Toxiproxy HTTP API: the real server or the embedded one.

One code path for every backend: the client speaks only the documented API, sets a timeout on
every call, and turns error answers into the exceptions of :mod:`pytest_chaos.proxy.errors`,
carrying the server's own message. Toxics and ``down()`` are handles that work as plain calls
and as context managers that undo themselves on exit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, final

import httpx

from pytest_chaos.proxy.errors import (
    BadRequest,
    Conflict,
    InvalidToxic,
    NotFound,
    ProxyExists,
    ProxyNotFound,
    ToxicExists,
    ToxicNotFound,
    ToxiproxyError,
)

DEFAULT_URL = "http://127.0.0.1:8474"
#: The toxic types of the embedded server that Toxiproxy has not.
EXTENSION_TYPES = frozenset({"blackhole", "http_status", "http_latency", "http_truncate"})
DEFAULT_TIMEOUT = 10.0

_BY_MESSAGE: dict[str, Callable[[], ToxiproxyError]] = {
    "proxy already exists": ProxyExists,
    "toxic already exists": ToxicExists,
    "proxy not found": ProxyNotFound,
    "toxic not found": ToxicNotFound,
}
_BY_STATUS: dict[int, type[ToxiproxyError]] = {400: BadRequest, 404: NotFound, 409: Conflict}


def error_from_response(response: httpx.Response, *, toxic_call: bool = False) -> ToxiproxyError:
    """Rebuild the server's error as an exception (bodies are JSON whatever the header says)."""
    try:
        message = str(json.loads(response.content)["error"])
    except (ValueError, KeyError, TypeError):
        message = response.text.strip() or response.reason_phrase
    cls = _BY_MESSAGE.get(message)
    if cls is not None:
        return cls()
    if response.status_code == 400 and toxic_call:
        return InvalidToxic(message)
    return _BY_STATUS.get(response.status_code, ToxiproxyError)(message, response.status_code)


class Toxiproxy:
    """A Toxiproxy API at ``url``; usable as a context manager that closes its connection."""

    proxy_class: type[Proxy]

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def __enter__(self) -> Toxiproxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: Any = None, *, toxic_call: bool = False) -> Any:
        """Send one API call; return its decoded JSON (None for an empty answer)."""
        content = None if body is None else json.dumps(body)
        response = self._http.request(method, path, content=content)
        if response.status_code >= 400:
            raise error_from_response(response, toxic_call=toxic_call)
        return json.loads(response.content) if response.content else None

    def version(self) -> str:
        answer = self.request("GET", "/version")
        return str(answer["version"]) if isinstance(answer, dict) else str(answer)

    def proxies(self) -> dict[str, Proxy]:
        answer = self.request("GET", "/proxies")
        return {name: self.proxy_class(self, data) for name, data in answer.items()}

    def get(self, name: str) -> Proxy:
        return self.proxy_class(self, self.request("GET", f"/proxies/{name}"))

    __getitem__ = get

    def create(
        self,
        name: str,
        upstream: str,
        listen: str = "127.0.0.1:0",
        *,
        enabled: bool = True,
        seed: int | None = None,
    ) -> Proxy:
        """Create a proxy; ``seed`` seeds its toxicity and jitter on the embedded server (a
        real Toxiproxy ignores the field)."""
        body: dict[str, Any] = {
            "name": name,
            "upstream": upstream,
            "listen": listen,
            "enabled": enabled,
        }
        if seed is not None:
            body["seed"] = seed
        return self.proxy_class(self, self.request("POST", "/proxies", body))

    def populate(self, proxies: list[Mapping[str, Any]]) -> list[Proxy]:
        answer = self.request("POST", "/populate", [dict(p) for p in proxies])
        return [self.proxy_class(self, data) for data in answer["proxies"]]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.request("POST", "/reset")


class Proxy:
    """A proxy on the server, as last seen; faults applied through it go to the server."""

    toxic_class: type[Toxic]

    def __init__(self, api: Toxiproxy, data: Mapping[str, Any]) -> None:
        self.api = api
        self._load(data)

    def _load(self, data: Mapping[str, Any]) -> None:
        self.name: str = data["name"]
        self.listen: str = data["listen"]
        self.upstream: str = data["upstream"]
        self.enabled: bool = data["enabled"]

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<Proxy {self.name} {self.listen} -> {self.upstream} {state}>"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def _path(self) -> str:
        return f"/proxies/{self.name}"

    def refresh(self) -> Proxy:
        self._load(self.api.request("GET", self._path))
        return self

    def update(self, **changes: Any) -> Proxy:
        """Change ``listen``, ``upstream`` or ``enabled`` on the server."""
        self._load(self.api.request("POST", self._path, changes))
        return self

    def disable(self) -> None:
        self.update(enabled=False)

    def enable(self) -> None:
        self.update(enabled=True)

    def down(self) -> Outage:
        """Take the proxy down now (listener closed, connections cut); used as a context
        manager, it comes back on exit, otherwise when ``enable()`` is called."""
        self.disable()
        return Outage(self)

    def delete(self) -> None:
        self.api.request("DELETE", self._path)

    def toxics(self) -> list[Toxic]:
        answer = self.api.request("GET", f"{self._path}/toxics")
        return [self.toxic_class(self, data) for data in answer]

    def toxic(self, name: str) -> Toxic:
        return self.toxic_class(self, self.api.request("GET", f"{self._path}/toxics/{name}"))

    def add_toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int | str,
    ) -> Toxic:
        """Add a toxic of any type; the named helpers below are the usual way."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes,
        }
        if name is not None:
            body["name"] = name
        try:
            data = self.api.request("POST", f"{self._path}/toxics", body, toxic_call=True)
        except InvalidToxic as refused:
            if type in EXTENSION_TYPES and refused.message == "invalid toxic type":
                raise InvalidToxic(
                    f"the Toxiproxy at {self.api.url} has no {type} toxic: HTTP toxics and "
                    "blackhole are pytest-chaos extensions, which a real Toxiproxy refuses; "
                    "use the embedded backend (--chaos-toxiproxy embedded)"
                ) from None
            raise
        return self.toxic_class(self, data)

    def latency(self, ms: int, jitter: int = 0, **options: Any) -> Toxic:
        """Delay data by ``ms`` milliseconds, plus or minus ``jitter``."""
        return self.add_toxic("latency", latency=ms, jitter=jitter, **options)

    def bandwidth(self, kb_per_s: int, **options: Any) -> Toxic:
        """Limit the rate to ``kb_per_s`` kilobytes (1000 bytes) a second."""
        return self.add_toxic("bandwidth", rate=kb_per_s, **options)

    def slow_close(self, ms: int, **options: Any) -> Toxic:
        """Delay closing the connection by ``ms`` milliseconds."""
        return self.add_toxic("slow_close", delay=ms, **options)

    def timeout(self, ms: int, **options: Any) -> Toxic:
        """Swallow all data, and close the connection after ``ms`` (0: never)."""
        return self.add_toxic("timeout", timeout=ms, **options)

    def reset_peer(self, ms: int = 0, **options: Any) -> Toxic:
        """Reset the connection (TCP RST) ``ms`` after the first data."""
        return self.add_toxic("reset_peer", timeout=ms, **options)

    def slicer(
        self, average_size: int, size_variation: int = 0, delay_us: int = 0, **options: Any
    ) -> Toxic:
        """Cut data into pieces of ``average_size`` bytes, ``delay_us`` microseconds apart."""
        return self.add_toxic(
            "slicer",
            average_size=average_size,
            size_variation=size_variation,
            delay=delay_us,
            **options,
        )

    def limit_data(self, bytes: int, **options: Any) -> Toxic:
        """Let ``bytes`` bytes through, then close the connection."""
        return self.add_toxic("limit_data", bytes=bytes, **options)

    # -- pytest-chaos's extensions (the embedded server only) ------------------------------

    def blackhole(self, **options: Any) -> Toxic:
        """Swallow everything in ``stream``, its end too: not even a close gets through."""
        return self.add_toxic("blackhole", **options)

    def http_status(
        self,
        status: int = 503,
        *,
        retry_after: int = 0,
        percent: int = 100,
        method: str = "",
        path: str = "",
        **options: Any,
    ) -> Toxic:
        """Answer ``percent`` % of the requests (those with ``method`` and a path matching
        the shell pattern ``path``, when given) with ``status`` and, with ``retry_after``,
        a ``Retry-After`` header, without passing them on; then close the connection."""
        options.setdefault("stream", "upstream")
        return self.add_toxic(
            "http_status",
            status=status,
            retry_after=retry_after,
            percent=percent,
            method=method,
            path=path,
            **options,
        )

    def http_latency(self, ms: int, **options: Any) -> Toxic:
        """Hold each response's head for ``ms`` milliseconds."""
        return self.add_toxic("http_latency", latency=ms, **options)

    def http_truncate(self, bytes: int = 0, **options: Any) -> Toxic:
        """Pass each response's head and ``bytes`` bytes of its body, then close."""
        return self.add_toxic("http_truncate", bytes=bytes, **options)


@final
class Outage:
    """A proxy taken down by :meth:`Proxy.down`; as a context manager it brings the proxy
    back on exit."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def __repr__(self) -> str:
        return f"<Outage of {self.proxy.name}>"

    def __enter__(self) -> Proxy:
        return self.proxy

    def __exit__(self, *exc_info: object) -> None:
        self.end()

    def end(self) -> None:
        """Bring the proxy back up."""
        self.proxy.enable()


class Toxic:
    """A toxic on a proxy; as a context manager it removes itself on exit."""

    def __init__(self, proxy: Proxy, data: Mapping[str, Any]) -> None:
        self.proxy = proxy
        self._load(data)

    def _load(self, data: Mapping[str, Any]) -> None:
        self.name: str = data["name"]
        self.type: str = data["type"]
        self.stream: str = data["stream"]
        self.toxicity: float = data["toxicity"]
        self.attributes: dict[str, int] = dict(data["attributes"])

    def __repr__(self) -> str:
        return f"<Toxic {self.name} {self.type} {self.stream} {self.attributes}>"

    def __enter__(self) -> Toxic:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.end()

    def end(self) -> None:
        """End the fault: remove the toxic (one already gone is fine)."""
        self.remove(missing_ok=True)

    @property
    def _path(self) -> str:
        return f"/proxies/{self.proxy.name}/toxics/{self.name}"

    def update(self, *, toxicity: float | None = None, **attributes: int) -> Toxic:
        body: dict[str, Any] = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        self._load(self.proxy.api.request("POST", self._path, body, toxic_call=True))
        return self

    def remove(self, *, missing_ok: bool = False) -> None:
        try:
            self.proxy.api.request("DELETE", self._path)
        except NotFound:
            if not missing_ok:
                raise


Toxiproxy.proxy_class = Proxy
Proxy.toxic_class = Toxic
