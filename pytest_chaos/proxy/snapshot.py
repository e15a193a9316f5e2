"""Undo by snapshot, for clients we cannot track call by call (toxiproxy-python): remember
the server's proxies and toxics before a test, and put them back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .client import Toxiproxy
from .errors import NotFound


@dataclass(frozen=True)
class ProxyState:
    enabled: bool
    toxics: frozenset[str]


def take(api: Toxiproxy) -> dict[str, ProxyState]:
    return {
        name: ProxyState(proxy.enabled, frozenset(t.name for t in proxy.toxics()))
        for name, proxy in api.proxies().items()
    }


def restore(api: Toxiproxy, before: dict[str, ProxyState]) -> None:
    """Delete proxies that are new, remove toxics that are new, and put ``enabled`` back."""
    for name, proxy in api.proxies().items():
        state = before.get(name)
        try:
            if state is None:
                proxy.delete()
                continue
            for toxic in proxy.toxics():
                if toxic.name not in state.toxics:
                    toxic.remove(missing_ok=True)
            if proxy.enabled != state.enabled:
                proxy.update(enabled=state.enabled)
        except NotFound:
            continue


def toxiproxy_python_client(url: str) -> Iterator[Any]:
    """A configured ``toxiproxy.Toxiproxy``; the server is restored when the generator ends."""
    try:
        from toxiproxy import Toxiproxy as PythonToxiproxy
    except ImportError:
        raise ImportError(
            "the toxiproxy_python fixture needs toxiproxy-python: "
            "pip install 'pytest-chaos[toxiproxy]'"
        ) from None
    parts = urlsplit(url)
    client = PythonToxiproxy()
    client.update_api_consumer(parts.hostname, parts.port)
    with Toxiproxy(url) as api:
        before = take(api)
        try:
            yield client
        finally:
            restore(api, before)
