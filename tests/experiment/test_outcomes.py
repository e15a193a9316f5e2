"""Experiments as a user meets them, through pytester, against real local services behind
the embedded proxy: every outcome (passes, deviates, not steady, halted, interrupted, dry
run), the declarative marker, the hooks, and journals that Chaos Toolkit accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Loaded here, before any inner session: pytester's in-process runs forget the modules a run
# imported, and a probe made by a module loaded in one run would not be an instance of the
# class an experiment module loaded in another run checks against.
import pytest_chaos.plugin.chaos
import pytest_chaos.probes
import pytest_chaos.steady.load  # noqa: F401

from ..servers import isolate_chaos_env
from .lab import shop_lab

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester folder with the shop and its fixtures."""
    return shop_lab(pytester)


def journals(folder: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


EXPERIMENTS = """
from pytest_chaos import faults, probes


def hypothesis(shop):
    return [
        probes.http(shop + "/order", status=200, timeout=0.5, name="order"),
        probes.slo(error_rate_max=0.05, min_samples=5),
    ]


def test_resilient_shop_passes(chaos, resilient_shop):
    journal = chaos.experiment(
        "orders survive a hung stock service",
        steady_state=hypothesis(resilient_shop),
        method=[faults.timeout("stock", for_s=1.0)],
        load=chaos.load.http(resilient_shop + "/order", rps=20, duration_s=60, timeout=2),
        strategy="continuously",
        frequency_s=0.25,
    )
    assert journal["status"] == "completed" and not journal["deviated"]


def test_fragile_shop_fails(chaos, fragile_shop):
    chaos.experiment(
        "orders survive a hung stock service",
        steady_state=hypothesis(fragile_shop),
        method=[faults.timeout("stock", start_after_s=0.2, for_s=1.0)],
        load=chaos.load.http(fragile_shop + "/order", rps=20, duration_s=60, timeout=2),
        strategy="continuously",
        frequency_s=0.25,
    )
"""


def test_a_resilient_service_passes_and_one_without_a_timeout_fails(lab: pytest.Pytester) -> None:
    """The same experiment against two shops: the one that times out its backend call and
    falls back passes; the one with no timeout fails with an account of what deviated,
    when, by how much, the faults, the load, and how to replay."""
    lab.makepyfile(test_shop=EXPERIMENTS)
    result = lab.runpytest(
        "--chaos-seed", "5", "--chaos-journal-dir", "journals", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chaos experiment 'orders survive a hung stock service' deviated from its steady "
            "state:",
            "*during the method at t+*: order: ReadTimeout: *; expected status 200*",
            "*faults:",
            "*timeout of stock (ms=0) from 0.2 s for 1 s: applied at t+0.2* s, ended at t+* s",
            "*load: * requests, *% errors, p99 * ms",
            "*seed 5; replay: pytest --chaos-seed 5 test_shop.py::test_fragile_shop_fails",
        ]
    )
    found = journals(lab.path / "journals")
    passed = found["test_shop.py_test_resilient_shop_passes"]
    failed = found["test_shop.py_test_fragile_shop_fails"]
    assert (passed["status"], passed["deviated"]) == ("completed", False)
    assert (failed["status"], failed["deviated"]) == ("completed", True)
    assert passed["steady_states"]["before"]["steady_state_met"]
    assert passed["steady_states"]["after"]["steady_state_met"]
    assert len(passed["steady_states"]["during"]) >= 2
    assert not all(state["steady_state_met"] for state in failed["steady_states"]["during"])
    timeline = failed["pytest_chaos"]["timeline"]
    assert [(t["kind"], t["target"]) for t in timeline] == [("timeout", "stock")]
    assert timeline[0]["ended_at_s"] >= 1.2  # never early
    assert failed["pytest_chaos"]["load"]["count"] > 0
    assert failed["pytest_chaos"]["seed"] == 5


CHECK_WITH_CHAOS_TOOLKIT = """
import json, sys
import chaoslib.experiment, chaosreport

for path in sys.argv[1:]:
    journal = json.load(open(path))
    chaoslib.experiment.ensure_experiment_is_valid(journal["experiment"])
    report = chaosreport.generate_report(journal, "markdown")
    print(journal["status"], journal["deviated"], journal["experiment"]["title"] in report,
          "| **Status**" in report)
"""


def test_journals_are_chaos_toolkit_journals(lab: pytest.Pytester) -> None:
    """chaostoolkit-lib validates the experiment each journal carries, and
    chaostoolkit-reporting renders each journal (in a process of their own: importing
    them changes how later in-process pytest runs find their plugins)."""
    lab.makepyfile(test_shop=EXPERIMENTS)
    lab.runpytest("--chaos-journal-dir", "journals").assert_outcomes(passed=1, failed=1)
    paths = sorted(str(path) for path in (lab.path / "journals").glob("*.json"))
    for path in paths:
        journal = json.loads(Path(path).read_text())
        for key in ("start", "end", "duration", "status", "deviated", "run", "rollbacks"):
            assert key in journal, (path, key)
    checked = subprocess.run(
        [sys.executable, "-c", CHECK_WITH_CHAOS_TOOLKIT, *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        "completed True True True",  # the fragile shop's journal, sorted first
        "completed False True True",
    ]


def test_a_system_not_steady_before_chaos_errors(lab: pytest.Pytester) -> None:
    """Not steady before the faults: the test errors (it proves nothing), never passes,
    and no fault is applied."""
    lab.makepyfile(
        test_down="""
        from pytest_chaos import faults, probes

        def test_not_steady(chaos, stock):
            stock.disable()  # the stock service is unreachable from the start
            chaos.experiment(
                "orders while stock is slow",
                steady_state=[probes.tcp(address=stock.listen, name="stock reachable")],
                method=[faults.latency("stock", ms=100, for_s=1)],
            )
        """
    )
    result = lab.runpytest("--chaos-journal-dir", "journals")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*chaos experiment 'orders while stock is slow' not in steady state before chaos:",
            "*before the method: stock reachable: ConnectionRefusedError*",
            "*ERROR test_down.py::test_not_steady*",
        ]
    )
    [journal] = journals(lab.path / "journals").values()
    assert (journal["status"], journal["deviated"]) == ("failed", False)
    assert journal["run"] == [] and journal["pytest_chaos"]["timeline"][0]["applied_at_s"] is None


def test_a_halt_condition_stops_every_fault_within_one_probe_interval(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        test_halt="""
        from pytest_chaos import faults, probes

        def test_halts(chaos, fragile_shop):
            chaos.experiment(
                "orders survive a hung stock service",
                method=[faults.timeout("stock", for_s=30), faults.latency("stock", ms=5, for_s=30)],
                halt=[probes.http(fragile_shop + "/order", timeout=0.3, name="orders answer")],
                frequency_s=1.0,
            )
        """
    )
    result = lab.runpytest("--chaos-journal-dir", "journals")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*chaos experiment 'orders survive a hung stock service' halted:",
            "*halt condition at t+*: orders answer: ReadTimeout*; every fault was rolled back",
        ]
    )
    [journal] = journals(lab.path / "journals").values()
    assert journal["status"] == "aborted"
    halted_at = journal["pytest_chaos"]["halted"]["breached_at_s"]
    for entry in journal["pytest_chaos"]["timeline"]:
        assert entry["ended_at_s"] is not None
        assert entry["ended_at_s"] <= halted_at + 1.0  # within one probe interval
    ended = [run["activity"]["name"] for run in journal["rollbacks"]]
    assert len(ended) == 2 and all(name.startswith("end ") for name in ended)


def test_rollbacks_run_after_a_keyboard_interrupt(lab: pytest.Pytester, tmp_path: Path) -> None:
    """Ctrl-C in the middle of the method: the faults are rolled back, the experiment's own
    rollbacks run (the strategy "always" plays them, as Chaos Toolkit's does, where its
    "default" would not after an interruption), and the journal says interrupted."""
    marker = tmp_path / "rolled-back"
    lab.makepyfile(
        test_interrupt=f"""
        import os, signal, threading
        from pathlib import Path
        from pytest_chaos import faults

        def interrupt_soon():
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()

        def test_interrupted(chaos, stock):
            chaos.experiment(
                "orders survive a slow stock service",
                method=[
                    faults.latency("stock", ms=100, for_s=30),
                    faults.action("interrupt", apply=interrupt_soon, for_s=30),
                ],
                rollbacks=[lambda: Path({str(marker)!r}).write_text(str(len(stock.toxics())))],
                rollback_strategy="always",
            )
        """
    )
    result = lab.runpytest_subprocess("--chaos-journal-dir", "journals")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert marker.read_text() == "0"  # the latency toxic was gone before the rollback ran
    [journal] = journals(lab.path / "journals").values()
    assert journal["status"] == "interrupted"
    assert [run["status"] for run in journal["rollbacks"]] == ["succeeded"] * 3


def test_dry_run_records_the_faults_but_applies_none(lab: pytest.Pytester) -> None:
    """Under --chaos-dry-run the fragile shop passes: the faults are on the timeline and
    reported to the hooks, but never applied."""
    lab.makepyfile(test_shop=EXPERIMENTS)
    lab.makepyfile(
        conftest_hooks="""
        def pytest_chaos_fault_applied(item, fault):
            print("APPLIED", fault.kind, fault.dry_run)
        """
    )
    result = lab.runpytest(
        "--chaos-dry-run", "--chaos-journal-dir", "journals", "-s", "-p", "conftest_hooks"
    )
    result.assert_outcomes(passed=2)
    assert "APPLIED timeout True" in result.stdout.str()
    for journal in journals(lab.path / "journals").values():
        assert journal["pytest_chaos"]["dry_run"] is True
        assert journal["pytest_chaos"]["timeline"][0]["applied_at_s"] is not None


def test_the_declarative_marker_runs_the_body_as_the_method(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_declared="""
        import httpx, pytest
        from pytest_chaos import faults, probes
        from shop_app import Backend, serve

        SERVER = serve(Backend)
        ADDRESS = SERVER.__enter__()  # a service that lives as long as the session

        @pytest.fixture
        def backend(toxiproxy):
            return toxiproxy.proxy("backend", upstream=ADDRESS)

        @pytest.mark.chaos(
            hypothesis="the backend answers within 1 s while 200 ms slower",
            steady_state=[probes.tcp(address=ADDRESS)],
            faults=[faults.latency("backend", ms=200)],
        )
        def test_slow_backend(backend):
            response = httpx.get(f"http://{backend.listen}/", timeout=1)
            assert response.elapsed.total_seconds() >= 0.2

        @pytest.mark.chaos(steady_state=[probes.tcp(address="127.0.0.1:1")])
        def test_never_runs_its_body():
            raise AssertionError("the body of a test not in steady state must not run")
        """
    )
    result = lab.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*not in steady state before chaos*"])


def test_a_bad_declarative_marker_stops_collection(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_bad="""
        import pytest
        from pytest_chaos import probes

        @pytest.mark.chaos(steady_state=[probes.tcp(address="127.0.0.1:1")], strategy="sometimes")
        def test_x():
            pass

        @pytest.mark.chaos(faults=["down redis"])
        def test_y():
            pass
        """
    )
    result = lab.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*invalid chaos marker:",
            "*test_x: @pytest.mark.chaos: strategy='sometimes': use one of default, "
            "before-method-only, after-method-only, during-method-only, continuously, skip*",
            "*test_y: @pytest.mark.chaos: method: 'down redis' is not one of the faults*",
        ]
    )


def test_hooks_hear_experiments_start_and_finish(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        conftest_hooks="""
        def pytest_chaos_experiment_started(item, experiment):
            print("\\nSTARTED", item.name, experiment.title)

        def pytest_chaos_experiment_finished(item, experiment, journal):
            print("\\nFINISHED", item.name, journal["status"], journal["deviated"])
        """
    )
    lab.makepyfile(test_shop=EXPERIMENTS)
    result = lab.runpytest("-s", "-p", "conftest_hooks", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    lines = [line for line in result.outlines if line.startswith(("STARTED", "FINISHED"))]
    assert lines == [
        "STARTED test_resilient_shop_passes orders survive a hung stock service",
        "FINISHED test_resilient_shop_passes completed False",
        "STARTED test_fragile_shop_fails orders survive a hung stock service",
        "FINISHED test_fragile_shop_fails completed True",
    ]


def test_every_kind_of_fault_on_one_timeline(lab: pytest.Pytester) -> None:
    """Network, process, in-process and HTTP faults and a user's own action, by handle and
    by name, in one method: each applied and ended on time, the hooks hear each, and
    everything is back afterwards."""
    lab.makepyfile(
        pricing="""
        def price(sku):
            return 10
        """
    )
    lab.makepyfile(
        test_all="""
        import sys
        import pricing
        from pytest_chaos import faults, probes

        def test_all_kinds(chaos, service, stock, chaos_monkey, chaos_http):
            web = service.process(
                "web", [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
                ready=probes.http("/"),
            )
            undone = []
            journal = chaos.experiment(
                "everything breaks a little",
                steady_state=[probes.call(lambda: True, name="always")],
                method=[
                    faults.latency(stock, ms=20, for_s=0.3),
                    faults.down("stock", start_after_s=0.4, for_s=0.3),
                    faults.kill("web", for_s=0.3),
                    faults.pause(web, start_after_s=0.4, for_s=0.3),
                    faults.patch("pricing.price", error=TimeoutError, for_s=0.3),
                    faults.http("status", 503, path="/pay", for_s=0.3),
                    faults.action("flag", apply=lambda: None, undo=lambda: undone.append(1),
                                  for_s=0.3),
                ],
            )
            timeline = journal["pytest_chaos"]["timeline"]
            assert [t["error"] for t in timeline] == [None] * 7, timeline
            assert all(t["ended_at_s"] is not None for t in timeline)
            assert web.running and pricing.price("x") == 10 and undone == [1]
            assert stock.enabled and stock.toxics() == []
            print("\\nKINDS", " ".join(t["kind"] for t in timeline))
        """
    )
    lab.makepyfile(
        conftest_hooks="""
        def pytest_chaos_fault_rolled_back(item, fault):
            print("\\nROLLED", fault.kind)
        """
    )
    result = lab.runpytest("-s", "-p", "conftest_hooks")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["KINDS latency down kill pause patch http.status action"])
    rolled = sorted(line.split()[1] for line in result.outlines if line.startswith("ROLLED "))
    assert rolled == sorted(["latency", "down", "kill", "pause", "monkey", "http.status", "action"])
