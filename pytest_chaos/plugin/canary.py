"""The ``canary`` fixture: routers that are closed at teardown, and releases run through
them whose results (with their timelines) go to the test's experiment journals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, final

import pytest

from pytest_chaos.canary.judge import Judge
from pytest_chaos.canary.rollout import (
    CanaryRollout,
    Instance,
    RollingRelease,
    RolloutResult,
    blue_green_switch,
)
from pytest_chaos.canary.router import Router
from pytest_chaos.core.seeding import TestSeeds

#: The results of a test's releases, for the journal of its experiments.
ROLLOUTS = pytest.StashKey[list[RolloutResult]]()


@final
class Canary:
    """What the ``canary`` fixture gives a test: ``router(...)`` to split traffic between
    pools, and ``rollout(...)``, ``switch(...)``, ``rolling(...)`` to release through it."""

    def __init__(self, item: pytest.Item, seeds: TestSeeds) -> None:
        self._seeds = seeds
        self._routers: list[Router] = []
        self.results: list[RolloutResult] = item.stash.setdefault(ROLLOUTS, [])

    def router(
        self,
        pools: Mapping[str, Sequence[str]],
        weights: Mapping[str, float] | None = None,
        **options: Any,
    ) -> Router:
        """A started router between ``pools`` (its choices seeded from the test's seed
        unless ``seed=`` is given); closed at teardown."""
        options.setdefault("seed", self._seeds.int_seed(f"canary-router-{len(self._routers)}"))
        router = Router(pools, weights, **options).start()
        self._routers.append(router)
        return router

    def rollout(self, traffic: Any, judge: Judge | None = None, **options: Any) -> CanaryRollout:
        """A canary release through ``traffic`` (a router); ``run()`` it, ``kill()`` it."""
        return CanaryRollout(traffic, judge, on_done=self.results.append, **options)

    def switch(self, traffic: Any, *, to: str = "green", away: str = "blue") -> RolloutResult:
        """Blue-green: all traffic to ``to`` at once."""
        result = blue_green_switch(traffic, to=to, away=away)
        self.results.append(result)
        return result

    def rolling(
        self,
        router: Router,
        pool: str,
        old: Sequence[Instance],
        start_new: Callable[[int], Instance],
        **options: Any,
    ) -> RollingRelease:
        """A rolling release of ``pool``'s instances; ``run()`` it."""
        return RollingRelease(router, pool, old, start_new, on_done=self.results.append, **options)

    def close(self) -> list[BaseException]:
        errors: list[BaseException] = []
        while self._routers:
            try:
                self._routers.pop().close()
            except Exception as error:
                errors.append(error)
        return errors
