"""Property tests of the store's bucketing: the promises a rollout makes to its users.

Hypothesis varies the group ids, user ids and percentages; the settings make every run
the same (derandomized, no example database) and short. The statistical checks use fixed,
deterministic user ids, so their thresholds (chosen for a false-alarm probability near
one in a million had the ids been random) can never flake.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_chaos.flags.store import FlagStore

PROPERTY = settings(derandomize=True, database=None, max_examples=60, deadline=None)
STATISTICAL = settings(derandomize=True, database=None, max_examples=8, deadline=None)

USERS = [{"userId": f"user-{i}"} for i in range(20_000)]
"""Deterministic ids for the statistical properties."""

CHI_SQUARE_LIMIT = 181.0
"""Chi-square with 99 degrees of freedom exceeds 181 with probability about 1e-6."""

group_ids = st.text(min_size=1, max_size=20).filter(
    lambda s: s.strip() != "" and '"' not in s and not s.endswith("\\")
)  # Unleash splices a groupId into its rule unescaped: those two break it


def _rollout(name: str, group_id: str, percentage: int) -> dict[str, Any]:
    parameters = {"rollout": str(percentage), "stickiness": "default", "groupId": group_id}
    return {
        "name": name,
        "enabled": True,
        "strategies": [{"name": "flexibleRollout", "parameters": parameters}],
    }


@PROPERTY
@given(
    group_id=group_ids,
    user_ids=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=30),
    low=st.integers(0, 100),
    high=st.integers(0, 100),
)
def test_raising_the_percentage_never_drops_a_user(
    group_id: str, user_ids: list[str], low: int, high: int
) -> None:
    low, high = min(low, high), max(low, high)
    store = FlagStore.from_unleash(
        {"features": [_rollout("low", group_id, low), _rollout("high", group_id, high)]}
    )
    for user in user_ids:
        if store.is_enabled("low", {"userId": user}):
            assert store.is_enabled("high", {"userId": user})


@PROPERTY
@given(group_id=group_ids, percentage=st.integers(0, 99))
def test_enable_with_a_higher_percentage_keeps_the_cohort(group_id: str, percentage: int) -> None:
    store = FlagStore.from_unleash({"features": [_rollout(group_id, group_id, percentage)]})
    users = USERS[:300]
    before = [u for u in users if store.is_enabled(group_id, u)]
    store.enable(group_id, percentage + 1)
    assert all(store.is_enabled(group_id, u) for u in before)


@STATISTICAL
@given(group_id=group_ids)
def test_buckets_are_uniform(group_id: str) -> None:
    """Each percentage point of a rollout takes 1% of users: the 100 buckets are even."""
    features = [_rollout(str(p), group_id, p) for p in range(101)]
    store = FlagStore.from_unleash({"features": features})
    counts = [0] * 100
    for user in USERS:
        # the bucket is the lowest rollout that admits the user (monotone, so bisect)
        low, high = 1, 100
        while low < high:
            middle = (low + high) // 2
            if store.is_enabled(str(middle), user):
                high = middle
            else:
                low = middle + 1
        counts[low - 1] += 1
    expected = len(USERS) / 100
    chi_square = sum((count - expected) ** 2 / expected for count in counts)
    assert chi_square < CHI_SQUARE_LIMIT, (chi_square, counts)


@STATISTICAL
@given(first=group_ids, second=group_ids)
def test_different_group_ids_give_independent_cohorts(first: str, second: str) -> None:
    """Two 50% rollouts with different groupIds share about a quarter of the users."""
    if first == second:
        second = first + "-other"
    store = FlagStore.from_unleash(
        {"features": [_rollout("a", first, 50), _rollout("b", second, 50)]}
    )
    in_a = [store.is_enabled("a", u) for u in USERS]
    in_b = [store.is_enabled("b", u) for u in USERS]
    n = len(USERS)
    # standard deviations: 0.0035 for each share, 0.0031 for the overlap; bounds ~6 of them
    assert abs(sum(in_a) / n - 0.5) < 0.022
    assert abs(sum(in_b) / n - 0.5) < 0.022
    both = sum(a and b for a, b in zip(in_a, in_b, strict=True)) / n
    assert abs(both - 0.25) < 0.019, both
