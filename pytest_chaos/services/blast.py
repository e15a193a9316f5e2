"""Blast radius: which of several instances a fault hits, drawn from the test's seeded
random stream so that a replayed run (``--chaos-seed``) hits the same ones."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from fractions import Fraction
from typing import TypeVar

T = TypeVar("T")


def pick(
    rng: random.Random,
    instances: Iterable[T],
    *,
    count: int | None = None,
    percent: float | None = None,
) -> list[T]:
    """Choose ``count`` of ``instances``, or ``percent`` % of them rounded up (so at least
    one when ``percent`` is above 0); one when neither is given. The chosen come back in
    the order they were given."""
    pool = list(instances)
    if count is not None and percent is not None:
        raise ValueError(
            f"pick(count={count!r}, percent={percent!r}): give count or percent, not both"
        )
    if percent is not None:
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int | float)
            or not 0 <= percent <= 100  # also refuses NaN
        ):
            raise ValueError(
                f"pick(percent={percent!r}) is not allowed; use a number from 0 to 100"
            )
        count = math.ceil(Fraction(percent) * len(pool) / 100)
    elif count is None:
        count = 1
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(pool):
        raise ValueError(
            f"pick(count={count!r}) is not allowed; use an integer from 0 to {len(pool)} "
            f"(the number of instances given)"
        )
    chosen = sorted(rng.sample(range(len(pool)), count))
    return [pool[index] for index in chosen]
