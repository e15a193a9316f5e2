"""The ``chaos_monkey`` and ``chaos_http`` fixtures as a user meets them, through pytester:
faults undone whatever the outcome, the seed replaying a run call by call, the report of a
failing test, the hooks, and dry run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..servers import isolate_chaos_env

pytestmark = pytest.mark.usefixtures("isolated_env")

SHOP = """
def charge(amount):
    return f"charged {amount}"

async def refund(amount):
    return f"refunded {amount}"

class Gateway:
    def capture(self, amount):
        return amount
"""


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)


def test_patches_are_undone_after_a_failing_test(pytester: pytest.Pytester) -> None:
    """A test that fails (or errors) with patches on leaves the code as it found it for the
    next test; the failing test's report lists what the monkey injected."""
    pytester.makepyfile(shop=SHOP)
    pytester.makepyfile(
        test_shop="""
        import pytest
        import shop

        ORIGINALS = (shop.charge, shop.refund, shop.Gateway.capture)

        def test_fails_with_patches_on(chaos_monkey):
            chaos_monkey.patch("shop.charge", error=TimeoutError)
            chaos_monkey.patch("shop.refund", latency_ms=1)
            chaos_monkey.patch("shop.Gateway.capture", error=ValueError("declined"), every=2)
            with pytest.raises(TimeoutError):
                shop.charge(5)
            shop.Gateway().capture(1)
            shop.Gateway().capture(2)

        def test_raises_an_unexpected_error(chaos_monkey):
            chaos_monkey.patch("shop.charge", error=KeyError)
            raise RuntimeError("the test itself broke")

        def test_next_test_sees_the_originals():
            assert (shop.charge, shop.refund, shop.Gateway.capture) == ORIGINALS
            assert "capture" in vars(shop.Gateway)
            assert shop.charge(3) == "charged 3"
        """
    )
    result = pytester.runpytest("--chaos-seed", "11", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    report = result.stdout.str()
    assert "chaos injections" in report
    assert "call 1 of shop.charge: error raised=TimeoutError(" in report
    assert "call 2 of shop.Gateway.capture: error raised=ValueError('declined')" in report


PATTERN_TEST = """
import json, os
import shop

def test_pattern(chaos_monkey):
    chaos_monkey.patch("shop.charge", error=TimeoutError, rate=0.5)
    chaos_monkey.patch("shop.Gateway.capture", latency_ms=(0, 2), rate=0.3)
    for amount in range(60):
        try:
            shop.charge(amount)
        except TimeoutError:
            pass
        shop.Gateway().capture(amount)
    struck = [(i.target, i.call, round(i.latency_ms, 6)) for i in chaos_monkey.injections]
    with open(os.environ["PATTERN_FILE"], "a") as out:
        out.write(json.dumps(struck) + "\\n")
"""


def _pattern_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytester.makepyfile(shop=SHOP)
    pytester.makepyfile(test_pattern=PATTERN_TEST)
    pytester.makepyfile(
        test_another="""
        def test_before(chaos_monkey):
            chaos_monkey.patch("shop.charge", error=TimeoutError, rate=0.5)
        """
    )
    pattern_file = pytester.path / "patterns.jsonl"
    monkeypatch.setenv("PATTERN_FILE", str(pattern_file))
    return pattern_file


def test_the_seed_replays_the_call_by_call_pattern(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same --chaos-seed strikes the same calls with the same latencies: alone, after
    another test that used the monkey, and on an xdist worker; another seed differs."""
    pattern_file = _pattern_runs(pytester, monkeypatch)
    runs = [
        ("--chaos-seed", "7", "test_pattern.py"),
        ("--chaos-seed", "7", "test_another.py", "test_pattern.py", "-p", "no:randomly"),
        ("--chaos-seed", "7", "-n", "2"),
        ("--chaos-seed", "8", "test_pattern.py"),
    ]
    for args in runs:
        both_files = "test_another.py" in args or "-n" in args
        pytester.runpytest_subprocess(*args).assert_outcomes(passed=2 if both_files else 1)
    patterns = [json.loads(line) for line in pattern_file.read_text().splitlines()]
    assert len(patterns) == 4
    assert patterns[0] == patterns[1] == patterns[2]
    assert patterns[3] != patterns[0]
    targets = {target for target, _, _ in patterns[0]}
    assert targets == {"shop.charge", "shop.Gateway.capture"}


def test_hooks_hear_every_fault_applied_and_rolled_back(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(shop=SHOP)
    pytester.makeconftest(
        """
        EVENTS = []

        def pytest_chaos_fault_applied(item, fault):
            EVENTS.append(("applied", item.name, fault.kind, fault.target))

        def pytest_chaos_fault_rolled_back(item, fault):
            EVENTS.append(("rolled back", item.name, fault.kind, fault.target))

        def pytest_sessionfinish(session):
            print()
            for event in EVENTS:
                print("EVENT", *event)
        """
    )
    pytester.makepyfile(
        test_hooks="""
        import shop

        def test_faults(chaos_monkey, chaos_http):
            with chaos_monkey.patch("shop.charge", error=TimeoutError):
                pass
            chaos_http.status(503, path="/pay")

            @chaos_monkey.chaos(latency_ms=1)
            def local():
                return 1
        """
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    events = [line.split(" ", 1)[1] for line in result.outlines if line.startswith("EVENT ")]
    assert events == [
        "applied test_faults monkey shop.charge",
        "rolled back test_faults monkey shop.charge",
        "applied test_faults http.status path=/pay",
        "applied test_faults monkey test_hooks.test_faults.<locals>.local",
        "rolled back test_faults http.status path=/pay",  # chaos_http's teardown comes first
        "rolled back test_faults monkey test_hooks.test_faults.<locals>.local",
    ]


def test_dry_run_records_but_injects_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(shop=SHOP)
    pytester.makepyfile(
        test_dry="""
        import shop

        def test_dry(chaos_monkey):
            chaos_monkey.patch("shop.charge", error=TimeoutError)
            assert shop.charge(1) == "charged 1"
            assert [(i.kind, i.dry_run) for i in chaos_monkey.injections] == [("error", True)]
            assert chaos_monkey.log.faults[0].dry_run

        def test_restored_after_dry_run():
            assert shop.charge.__module__ == "shop" and shop.charge.__name__ == "charge"
            assert not hasattr(shop.charge, "__wrapped__")
        """
    )
    pytester.runpytest("--chaos-dry-run", "-p", "no:randomly").assert_outcomes(passed=2)


def test_chaos_http_ends_rules_and_closes_its_clients(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_http="""
        import httpx

        KEPT = {}

        def answer(request):
            return httpx.Response(200, text="fine")

        def test_uses_http(chaos_http):
            KEPT["client"] = chaos_http.client(transport=httpx.MockTransport(answer))
            KEPT["rule"] = chaos_http.status(503)
            assert KEPT["client"].get("http://shop.local/").status_code == 503

        def test_after():
            assert KEPT["client"].is_closed
            assert not KEPT["rule"].active
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_the_monkey_works_without_pytest(tmp_path: Path) -> None:
    """A service can ship the monkey behind a setting: importing and using it loads
    neither pytest nor httpx."""
    script = (
        "import sys\n"
        "from pytest_chaos.inject import ChaosConfig, ChaosMonkey\n"
        "monkey = ChaosMonkey(ChaosConfig(enabled=True, failure_rate=0.5), seed=3)\n"
        "@monkey.chaos('payments', error=TimeoutError)\n"
        "def charge(amount):\n"
        "    return amount\n"
        "failed = 0\n"
        "for amount in range(100):\n"
        "    try:\n"
        "        charge(amount)\n"
        "    except TimeoutError:\n"
        "        failed += 1\n"
        "print(failed, monkey.stats()['failures_injected'], 'pytest' in sys.modules,"
        " 'httpx' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    failed, recorded, pytest_loaded, httpx_loaded = done.stdout.split()
    assert failed == recorded
    assert 20 < int(failed) < 80
    assert (pytest_loaded, httpx_loaded) == ("False", "False")


def test_report_lists_http_injections(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_report="""
        import httpx

        def test_fails(chaos_http):
            client = chaos_http.client(
                transport=httpx.MockTransport(lambda request: httpx.Response(200))
            )
            chaos_http.status(429, retry_after=3, path="/orders/*")
            assert client.get("http://shop.local/orders/7").status_code == 200
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert re.search(
        r"call 1 of GET http://shop.local/orders/7: status status=429 retry_after=3",
        result.stdout.str(),
    )
