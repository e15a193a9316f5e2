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
from typing import final

SEED_BITS = 32


def replay_command(seed: int, nodeid: str) -> str:
    """The command that runs one test again with the same random choices."""
    return f"pytest --chaos-seed {seed} {shlex.quote(nodeid)}"


def fresh_seed() -> int:
    """A new session seed, short enough to read aloud and type back."""
    return secrets.randbits(SEED_BITS)


def derive(seed: int, *names: object) -> int:
    """A 64-bit seed for the stream named by ``names`` under ``seed`` (each name is
    written with ``str``: ``derive(s, "x", 3)`` is ``derive(s, "x", "3")``)."""
    material = "\0".join(map(str, (seed, *names))).encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big")


def draw(seed: int, *identity: object) -> float:
    """A number in [0, 1) that ``seed`` and ``identity`` alone decide.

    The identity names what the draw decides (a proxy's toxic on its 7th connection, the
    12th call of a fault...), so no other draw, taken earlier or later or on another
    thread, can shift it: the replay rule of every random choice in the package."""
    return (derive(seed, *identity) >> 11) * _TWO_TO_MINUS_53


def rng_for(seed: int, *identity: object) -> random.Random:
    """A random stream for one decision that needs several numbers (a slicer's cuts of one
    chunk), fixed by ``seed`` and ``identity`` as :func:`draw` is."""
    return random.Random(derive(seed, *identity))


_TWO_TO_MINUS_53 = 2.0**-53


def stream(seed: int, nodeid: str, purpose: str) -> random.Random:
    """The random stream of one test for one purpose (``"toxicity"``, ``"monkey"``...)."""
    return random.Random(derive(seed, nodeid, purpose))


@final
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

    def decision(self, purpose: str, *identity: object) -> random.Random:
        """A stream for one decision of this test, named by ``purpose`` and ``identity``
        (``decision("pick", 3)``: the test's third pick), so that no other decision, taken
        before or after it or on another thread, shifts what it draws."""
        return rng_for(self.seed, self.nodeid, purpose, *identity)

    def int_seed(self, purpose: str) -> int:
        """A plain integer seed for a component that takes one (a proxy server's ``--seed``)."""
        return derive(self.seed, self.nodeid, purpose)
