"""Blast radius: ``service.pick`` chooses from the test's seeded stream, so a replay chooses
the same instances; counts and percentages are checked."""

from __future__ import annotations

import random
import re

import httpx
import pytest

from pytest_chaos import probes
from pytest_chaos.plugin.session import chaos_session
from pytest_chaos.services import ServiceManager
from pytest_chaos.services.blast import pick

from .helpers import app


@pytest.mark.parametrize(
    ("size", "percent", "expected"),
    [
        (10, 30, 3),
        (10, 31, 4),
        (4, 30, 2),
        (10, 1, 1),
        (10, 0, 0),
        (10, 100, 10),
        (3, 33.4, 2),
        (0, 50, 0),
    ],
)
def test_percent_rounds_up(size: int, percent: float, expected: int) -> None:
    assert len(pick(random.Random(1), range(size), percent=percent)) == expected


def test_count_and_the_default_of_one() -> None:
    rng = random.Random(1)
    assert len(pick(rng, "abcdef", count=4)) == 4
    assert len(pick(rng, "abcdef")) == 1
    assert pick(rng, "abc", count=3) == ["a", "b", "c"]  # in the order given


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"count": 4},
            "pick(count=4) is not allowed; use an integer from 0 to 3 (the number of instances given)",
        ),
        ({"count": -1}, "pick(count=-1) is not allowed; use an integer from 0 to 3"),
        ({"count": True}, "pick(count=True) is not allowed"),
        ({"percent": 150}, "pick(percent=150) is not allowed; use a number from 0 to 100"),
        ({"percent": float("nan")}, "pick(percent=nan) is not allowed"),
        ({"count": 1, "percent": 10}, "pick(count=1, percent=10): give count or percent, not both"),
    ],
)
def test_bad_values_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        pick(random.Random(1), "abc", **arguments)  # type: ignore[arg-type]


def test_the_nth_pick_draws_from_the_tests_nth_pick_stream(
    service: ServiceManager, request: pytest.FixtureRequest
) -> None:
    """Each pick has a stream of its own (the test's n-th pick), so one pick more or less
    before it changes nothing."""
    seeds = chaos_session(request.config).seeds(request.node.nodeid)
    first = pick(seeds.decision("pick", 1), range(100), count=5)
    second = pick(seeds.decision("pick", 2), range(100), percent=7)
    assert first != pick(seeds.decision("pick", 2), range(100), count=5)
    assert (service.pick(range(100), count=5), service.pick(range(100), percent=7)) == (
        first,
        second,
    )


def test_the_same_seed_picks_the_same_instances(
    pytester: pytest.Pytester, isolated_env: None
) -> None:
    pytester.makepyfile(
        """
        def test_choose(service):
            print("PICKED", service.pick(range(1000), percent=1))
        """
    )

    def picked(seed: str) -> str:
        result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--chaos-seed", seed)
        result.assert_outcomes(passed=1)
        match = re.search(r"PICKED \[[\d, ]+\]", result.stdout.str())
        assert match, result.stdout.str()
        return match.group(0)

    assert picked("7") == picked("7") != picked("8")


def test_kill_30_percent_of_the_workers(service: ServiceManager) -> None:
    workers = [
        service.process(f"worker-{n}", app(), ready=probes.http("/health")) for n in range(4)
    ]
    victims = service.pick(workers, percent=30)
    assert len(victims) == 2  # 30 % of 4, rounded up
    for victim in victims:
        victim.kill()
    for worker in workers:
        if worker in victims:
            with pytest.raises(httpx.ConnectError):
                httpx.get(worker.url, timeout=5)
        else:
            assert httpx.get(worker.url, timeout=5).text == "hello"
