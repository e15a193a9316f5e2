"""Checks of the probes' arguments: what cannot mean what was written (an address where a
port's name goes, a path that is an address, a status that is no HTTP status) is refused
when the probe is made, with the value and what to write instead."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from urllib.parse import urlsplit

from pytest_chaos.core.checks import seconds
from pytest_chaos.steady.tolerance import Tolerance, tolerance

#: A port's name: ``{port:NAME}`` of a process, or a container's ``"8080/tcp"``.
_PORT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*|\d+/(tcp|udp|sctp)")
_ADDRESS = re.compile(r"(\[[^\]]+\]|[^:/\s]+):(\d+)")


def check_port_name(where: str, port: object) -> None:
    """``port`` names a port of a service: ``{port:NAME}``'s NAME, or ``"8080/tcp"``."""
    if isinstance(port, str) and _PORT_NAME.fullmatch(port):
        return
    if isinstance(port, str) and _ADDRESS.fullmatch(port):
        hint = f"for an address use {where}(address={port!r})"
        if where == "probes.http":
            hint = f"for an address use {where}('http://{port}/')"
        raise ValueError(f"{where}({port!r}) names a port of the service, not an address; {hint}")
    if (isinstance(port, int) and not isinstance(port, bool)) or (
        isinstance(port, str) and port.isdigit()
    ):
        here = f"address='127.0.0.1:{port}'"
        if where == "probes.http":
            here = f"a full URL such as 'http://127.0.0.1:{port}/'"
        raise ValueError(
            f"{where}({port!r}) names a port of the service (its {{port:NAME}}, or a "
            f"container's '{port}/tcp'), not a number; for a port of this machine use {here}"
        )
    raise ValueError(
        f"{where}(port={port!r}): name a port of the service: its {{port:NAME}} (letters, "
        "digits, '_' and '-'), or a container's '8080/tcp'"
    )


def check_address(address: object) -> None:
    """``address`` is ``host:port``, the port from 1 to 65535."""
    matched = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if matched is None or not 1 <= int(matched.group(2)) <= 65535:
        raise ValueError(
            f"address={address!r}: use host:port with a port from 1 to 65535, such as "
            "'127.0.0.1:6379'"
        )


def check_path(path: object) -> None:
    """``path`` is a path on a service, or a full http(s) URL with a host."""
    if not isinstance(path, str) or not path:
        raise TypeError(f"probes.http({path!r}): give a path ('/health') or a full URL")
    if "://" in path:
        parts = urlsplit(path)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise ValueError(
                f"probes.http({path!r}): not an http:// or https:// URL with a host (and a "
                "port from 1 to 65535)"
            )
    elif _ADDRESS.match(path.split("/", 1)[0]) and not path.startswith("/"):
        raise ValueError(
            f"probes.http({path!r}) would be a path on the service; for that address give "
            f"a full URL: probes.http('http://{path}')"
        )


def http_statuses(status: object) -> int | frozenset[int]:
    """An HTTP status, or a non-empty collection of them (as a frozenset)."""

    def valid(code: object) -> bool:
        return isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599

    if valid(status):
        return status  # type: ignore[return-value]  # checked just above
    if isinstance(status, Collection) and not isinstance(status, (str, bytes, Mapping)):
        codes = list(status)
        if codes and all(valid(code) for code in codes):
            return frozenset(codes)
    raise ValueError(
        f"status={status!r}: use an HTTP status from 100 to 599, or a collection of them"
    )


def http_body(body: object) -> str | Callable[[str], object] | Tolerance | None:
    """What ``body=`` checks: a substring, a tolerance (or a Chaos Toolkit form of one),
    or a predicate of the text."""
    if body is None or isinstance(body, (str, Tolerance)):
        return body
    if isinstance(body, (Mapping, list, tuple, re.Pattern)):
        return tolerance(body)  # Chaos Toolkit's forms: {"type": "regex", ...}, [...]
    if callable(body):
        return body
    raise TypeError(
        f"body={body!r}: use a string the body contains, a tolerance, or a function of the body"
    )


def timeout_of(value: object) -> float:
    """``timeout=``, in seconds, more than 0."""
    return seconds("timeout", value, allow_zero=False)


def probe_name(name: object) -> str | None:
    """``name=``: None, or a non-empty string."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"name={name!r}: use a non-empty string")
    return name
