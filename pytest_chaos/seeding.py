"""The session seed, and independent random streams derived from it.

Every random choice a test makes (jitter, which calls fail, which instance dies) comes from a
stream named by the session seed, the test's node id and a purpose. Streams never share
state, so a test replays identically alone, in another order, or on another xdist worker.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import shlex

SEED_BITS = 32


def replay_command(seed: int, nodeid: str) -> str:
    """The command that runs one test again with the same random choices."""
    return f"pytest --chaos-seed {seed} {shlex.quote(nodeid)}"


def fresh_seed() -> int:
    """A new session seed, short enough to read aloud and type back."""
    return secrets.randbits(SEED_BITS)


def derive(seed: int, *names: str) -> int:
    """A 64-bit seed for the stream named by ``names`` under ``seed``."""
    material = "\0".join((str(seed), *names)).encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big")


def stream(seed: int, nodeid: str, purpose: str) -> random.Random:
    """The random stream of one test for one purpose (``"toxicity"``, ``"monkey"``...)."""
    return random.Random(derive(seed, nodeid, purpose))


class TestSeeds:
    """The streams of one test: ask by purpose, get the same stream every time."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def __init__(self, seed: int, nodeid: str) -> None:
        self.seed = seed
        self.nodeid = nodeid
        self._streams: dict[str, random.Random] = {}

    def __call__(self, purpose: str) -> random.Random:
        rng = self._streams.get(purpose)
        if rng is None:
            rng = self._streams[purpose] = stream(self.seed, self.nodeid, purpose)
        return rng

    def int_seed(self, purpose: str) -> int:
        """A plain integer seed for a component that takes one (a proxy server's ``--seed``)."""
        return derive(self.seed, self.nodeid, purpose)
