"""The random numbers of one call of an in-process fault, fixed by the test's seed, so that a
run can be replayed call by call whatever the threads did."""

from __future__ import annotations

from typing import final

from pytest_chaos.core.seeding import draw


@final
class CallDraws:
    """The random numbers of one call of a fault: the k-th is fixed by the seed, the fault's
    name, the call's number and k, so no other call (earlier, later, on another thread)
    can change what this one draws."""

    __slots__ = ("_call", "_name", "_seed", "_taken")

    def __init__(self, seed: int, name: str, call: int) -> None:
        self._seed = seed
        self._name = name
        self._call = call
        self._taken = 0

    def random(self) -> float:
        """The next number in [0, 1)."""
        self._taken += 1
        return draw(self._seed, "monkey", self._name, self._call, self._taken)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()
