"""The router's table: each pool's instances and weight, and the choice of a pool for a
request, by a key (sticky) or by chance; a new table replaces the old one whole."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import final


@final
class Table:
    """Pools and weights at one moment: replaced whole on every change, never changed."""

    __slots__ = ("live", "pools", "total", "upstreams", "weights")

    def __init__(self, pools: Mapping[str, tuple[str, ...]], weights: Mapping[str, float]) -> None:
        self.pools = dict(pools)
        self.weights = {name: float(weights.get(name, 0.0)) for name in self.pools}
        self.live = [(name, weight) for name, weight in self.weights.items() if weight > 0]
        self.total = sum(weight for _, weight in self.live)
        self.upstreams = frozenset(u for instances in self.pools.values() for u in instances)

    def by_chance(self, unit: float) -> str:
        """The pool that ``unit`` (in [0, 1)) falls in, pools laid end to end by weight."""
        point = unit * self.total
        for name, weight in self.live:
            point -= weight
            if point < 0:
                return name
        return self.live[-1][0]  # rounding left the point at the very end

    def by_key(self, key: str) -> str:
        """Weighted rendezvous hashing: the pool with the lowest ``-ln(u) / weight``."""
        return min(self.live, key=lambda item: -math.log(unit(item[0], key)) / item[1])[0]


def unit(pool: str, key: str) -> float:
    """A hash of (pool, key), uniform in the open interval (0, 1)."""
    digest = hashlib.blake2b(f"{pool}\0{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def count_keys(pool: str, upstream: str) -> tuple[str, ...]:
    return (pool, f"{pool}/{upstream}") if upstream else (pool,)
