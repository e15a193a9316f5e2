"""Port placeholders in a service's command line: ``{port}`` and ``{port:NAME}`` become free
loopback ports, chosen once per service and kept across restarts."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Mapping
from contextlib import ExitStack

MAIN = "port"
"""The name of the port that ``{port}`` stands for (``{port}`` is ``{port:port}``)."""

_PLACEHOLDER = re.compile(r"\{port(?::([^{}]*))?\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_SYNTAX = "{port} or {port:NAME}, NAME made of letters, digits, '_' and '-'"


def names_in(text: str, where: str) -> list[str]:
    """The port names that ``text`` refers to, in order; ``where`` names ``text`` in errors."""
    names = []
    for match in _PLACEHOLDER.finditer(text):
        name = MAIN if match.group(1) is None else match.group(1)
        if not _NAME.match(name):
            raise ValueError(
                f"{where}={text!r}: {match.group(0)!r} is not a port placeholder; use {_SYNTAX}"
            )
        names.append(name)
    return names


def expand(text: str, ports: Mapping[str, int]) -> str:
    """``text`` with every placeholder replaced by its port number."""
    return _PLACEHOLDER.sub(lambda match: str(ports[match.group(1) or MAIN]), text)


def check_fixed(ports: Mapping[str, int]) -> dict[str, int]:
    """Validate ``ports=``: names to port numbers, 0 for a free port."""
    if not isinstance(ports, Mapping):
        raise TypeError(
            f"ports={ports!r}: expected a mapping of names to port numbers, such as {{'port': 6379}}"
        )
    for name, number in ports.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"ports: name {name!r} is not allowed; use letters, digits, '_' and '-'"
            )
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 65535:
            raise ValueError(
                f"ports[{name!r}]={number!r} is not allowed; use 1 to 65535, or 0 for a free port"
            )
    return dict(ports)


def allocate(
    names: Iterable[str], fixed: Mapping[str, int], taken: set[int], host: str = "127.0.0.1"
) -> dict[str, int]:
    """A port for every name: the fixed one if given (and not 0), else a free port of
    ``host`` not in ``taken``. The chosen ports are added to ``taken``."""
    chosen: dict[str, int] = {}
    with ExitStack() as held:  # hold every socket until all are chosen: no port twice
        for name in dict.fromkeys([*names, *fixed]):
            if fixed.get(name):
                chosen[name] = fixed[name]
                taken.add(fixed[name])
                continue
            while True:
                sock = held.enter_context(socket.socket())
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
                if port not in taken:
                    break
            chosen[name] = port
            taken.add(port)
    return chosen
