"""Undo by snapshot, for clients we cannot track call by call (toxiproxy-python): remember
the server's proxies and toxics before a test, and put them back afterwards, whatever the
test created, deleted or changed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, final
from urllib.parse import urlsplit

from pytest_chaos.proxy.client import Proxy, Toxic, Toxiproxy
from pytest_chaos.proxy.errors import NotFound


@final
@dataclass(frozen=True)
class ToxicSnapshot:
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]

    @classmethod
    def of(cls, toxic: Toxic) -> ToxicSnapshot:
        return cls(toxic.type, toxic.stream, toxic.toxicity, dict(toxic.attributes))

    def add_to(self, proxy: Proxy, name: str) -> None:
        """Make this toxic again on ``proxy``, untracked (the base client's call)."""
        Proxy.add_toxic(
            proxy,
            self.type,
            name=name,
            stream=self.stream,
            toxicity=self.toxicity,
            **self.attributes,
        )


@final
@dataclass(frozen=True)
class ProxyState:
    listen: str
    upstream: str
    enabled: bool
    toxics: dict[str, ToxicSnapshot]

    @classmethod
    def of(cls, proxy: Proxy) -> ProxyState:
        toxics = {toxic.name: ToxicSnapshot.of(toxic) for toxic in proxy.toxics()}
        return cls(proxy.listen, proxy.upstream, proxy.enabled, toxics)

    def recreate(self, api: Toxiproxy, name: str) -> None:
        """Make proxy ``name`` again as it was, with its toxics, untracked."""
        proxy = Toxiproxy.create(api, name, self.upstream, self.listen, enabled=self.enabled)
        for toxic_name, toxic in self.toxics.items():
            toxic.add_to(proxy, toxic_name)


def take(api: Toxiproxy) -> dict[str, ProxyState]:
    return {name: ProxyState.of(proxy) for name, proxy in api.proxies().items()}


def restore(api: Toxiproxy, before: dict[str, ProxyState]) -> None:
    """Put the server back as ``before`` found it: delete new proxies and toxics, recreate
    deleted ones, and undo changes to addresses, ``enabled``, toxicity and attributes."""
    current = api.proxies()
    for name, proxy in current.items():
        state = before.get(name)
        try:
            if state is None:
                proxy.delete()
                continue
            if (proxy.listen, proxy.upstream) != (state.listen, state.upstream):
                proxy.update(listen=state.listen, upstream=state.upstream)
            _restore_toxics(proxy, state.toxics)
            if proxy.enabled != state.enabled:
                proxy.update(enabled=state.enabled)
        except NotFound:
            continue
    for name, state in before.items():
        if name not in current:
            state.recreate(api, name)


def _restore_toxics(proxy: Proxy, wanted: dict[str, ToxicSnapshot]) -> None:
    present = {toxic.name: toxic for toxic in proxy.toxics()}
    for name, toxic in list(present.items()):
        old = wanted.get(name)
        if old is None or (toxic.type, toxic.stream) != (old.type, old.stream):
            toxic.remove(missing_ok=True)
            del present[name]
        elif ToxicSnapshot.of(toxic) != old:
            toxic.update(toxicity=old.toxicity, **old.attributes)
    for name, old in wanted.items():
        if name not in present:
            old.add_to(proxy, name)


def toxiproxy_python_client(url: str) -> Iterator[Any]:
    """A configured ``toxiproxy.Toxiproxy``; the server is restored when the generator ends."""
    try:
        from toxiproxy import Toxiproxy as PythonToxiproxy
        from toxiproxy.api import APIConsumer
    except ImportError:
        raise ImportError(
            "the toxiproxy_python fixture needs toxiproxy-python: "
            "pip install 'pytest-chaos[toxiproxy]'"
        ) from None
    parts = urlsplit(url)
    client = PythonToxiproxy()
    # toxiproxy-python keeps the server's address in class attributes: put them back after
    previous = (APIConsumer.host, APIConsumer.port)
    client.update_api_consumer(parts.hostname, parts.port)
    try:
        with Toxiproxy(url) as api:
            before = take(api)
            try:
                yield client
            finally:
                restore(api, before)
    finally:
        client.update_api_consumer(*previous)
