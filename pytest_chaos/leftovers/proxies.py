"""Removing proxies and toxics by name from a Toxiproxy server: a run's own when it ends
(:mod:`.warden`), and those of dead runs when the next one starts (:mod:`.sweep`).

Deleting a proxy deletes its toxics with it; on a proxy that stays (one the run did not
make, such as a proxy of the server's own configuration), only the chosen toxics go.
What another sweeper removed first is no error. Standard library only (the supervisor
process imports it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

TIMEOUT_S = 5.0


@final
@dataclass
class Swept:
    """What a sweep of one server removed, and the names of what it left there."""

    proxies: list[str] = field(default_factory=list)
    toxics: list[str] = field(default_factory=list)
    kept_proxies: list[str] = field(default_factory=list)
    kept_toxics: list[str] = field(default_factory=list)


def sweep(url: str, doomed: Callable[[str], bool], *, timeout: float = TIMEOUT_S) -> Swept:
    """Delete from the Toxiproxy API at ``url`` every proxy whose name is ``doomed``, and
    every doomed toxic of the other proxies. Errors of the server (other than a 404 for
    what is already gone) and of the network are raised."""
    swept = Swept()
    proxies: dict[str, Any] = _call("GET", f"{url}/proxies", timeout) or {}
    for name, proxy in proxies.items():
        toxics = [str(toxic["name"]) for toxic in proxy.get("toxics") or []]
        path = f"{url}/proxies/{quote(name, safe='')}"
        if doomed(name):
            if _delete(path, timeout):
                swept.proxies.append(name)
                swept.toxics.extend(toxics)
            continue
        swept.kept_proxies.append(name)
        for toxic in toxics:
            if not doomed(toxic):
                swept.kept_toxics.append(toxic)
            elif _delete(f"{path}/toxics/{quote(toxic, safe='')}", timeout):
                swept.toxics.append(toxic)
    return swept


def _delete(url: str, timeout: float) -> bool:
    """DELETE ``url``; False when it was already gone."""
    import urllib.error

    try:
        _call("DELETE", url, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
    return True


def _call(method: str, url: str, timeout: float) -> Any:
    """One API call; credentials in the URL are sent as HTTP basic authentication, as
    httpx (the fixtures' client) sends them."""
    parts = urlsplit(url)
    headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    import urllib.request  # here: most sessions never sweep a server

    request = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        body = answer.read()
    return json.loads(body) if body else None
