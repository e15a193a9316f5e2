"""The router's arguments checked before anything starts, each error naming the bad value
and what is allowed."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from pytest_chaos.proxy.engine import split_address
from pytest_chaos.proxy.errors import BadRequest

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def names(pools: Mapping[str, object]) -> str:
    return ", ".join(repr(name) for name in pools)


def check_address(value: object, what: str, *, port_zero: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} address must be a 'host:port' string, got {value!r}")
    try:
        _, port = split_address(value, what)
    except BadRequest as error:
        raise ValueError(error.message) from None
    if port == 0 and not port_zero:
        raise ValueError(f"{what} address {value!r} must have a port from 1 to 65535")
    return value


def check_upstreams(pool: str, upstreams: object, *, allow_empty: bool) -> tuple[str, ...]:
    if isinstance(upstreams, (str, bytes)) or not isinstance(upstreams, Sequence):
        raise TypeError(f"pool {pool!r} must be a list of 'host:port' strings, got {upstreams!r}")
    if not upstreams and not allow_empty:
        raise ValueError(f"pool {pool!r} has no upstream; give it at least one 'host:port'")
    return tuple(check_address(upstream, f"pool {pool!r} upstream") for upstream in upstreams)


def check_pools(pools: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(pools, Mapping):
        raise TypeError(f"pools must map pool names to lists of 'host:port', got {pools!r}")
    if not pools:
        raise ValueError("pools is empty; name at least one pool of upstreams")
    checked: dict[str, tuple[str, ...]] = {}
    for name, upstreams in pools.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"pool name must be a non-empty string without '/', got {name!r}")
        checked[name] = check_upstreams(name, upstreams, allow_empty=False)
    return checked


def check_weights(weights: object, pools: Mapping[str, object]) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must map pool names to numbers, got {weights!r}")
    checked: dict[str, float] = {}
    for name, weight in weights.items():
        if name not in pools:
            raise ValueError(f"weights name unknown pool {name!r}; the pools are {names(pools)}")
        number = finite(weight)
        if number is None or number < 0:
            raise ValueError(
                f"weight of pool {name!r} must be a finite number >= 0, got {weight!r}"
            )
        checked[name] = number
    if not any(checked.values()):
        raise ValueError(f"weights must give some pool a positive weight, got {dict(weights)!r}")
    return checked


def check_sticky(sticky: object, mode: str) -> str | None:
    if sticky is None:
        return None
    if mode == "tcp":
        if sticky != "client":
            raise ValueError(
                f"sticky in TCP mode must be 'client' (the client's IP), got {sticky!r}"
            )
        return "client"
    if not isinstance(sticky, str) or not _TOKEN.fullmatch(sticky):
        raise ValueError(f"sticky must be the name of an HTTP request header, got {sticky!r}")
    return sticky.lower()


def check_timeout(value: object) -> float:
    number = finite(value)
    if number is None or number <= 0:
        raise ValueError(f"connect_timeout must be a number of seconds > 0, got {value!r}")
    return number


def finite(value: object) -> float | None:
    """``value`` as a float if it is a finite real number (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
