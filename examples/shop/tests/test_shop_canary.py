"""A canary release of a bad v2, rolled back by the judge before it reaches most users."""

import pytest

from pytest_chaos.canary.judge import StatisticalJudge


@pytest.mark.chaos(weight=8, hypothesis="a v2 that fails half its pages is rolled back early")
def test_a_bad_v2_is_rolled_back(canary, chaos, start_shop):
    """v1 and v2 run side by side behind the canary router; v2 has a bug (every second
    product page answers 500). The rollout moves traffic 10, 25, 50, 100% while the
    statistical judge compares v2's requests with v1's: at the first stage with 15
    canary requests (25% at 80 requests a stage, usually) the error rate fails it (a critical metric) and it is rolled back."""
    v1 = start_shop("v1")
    v2 = start_shop("v2", version="v2", fail_every=2)
    router = canary.router({"stable": [v1.address], "canary": [v2.address]})
    load = chaos.load.http(router.url + "/products/tea", rps=50, duration_s=30)
    with load.start():
        rollout = canary.rollout(
            router, StatisticalJudge(min_samples=15), stages=(10, 25, 50, 100), stage_requests=80
        )
        result = rollout.run()
    assert result.rolled_back
    assert router.weights()["canary"] == 0
    last = result.timeline[-1]
    assert last["action"] == "rollback"
    assert last["percent"] <= 50  # never promoted to everyone
    failed = {m["metric"] for m in last["verdict"]["metrics"] if m["outcome"] == "fail"}
    assert "error_rate" in failed
