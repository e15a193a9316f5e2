"""The ``service`` fixture as a user meets it, through pytester: the log tail in a failing
test's report, the hooks, dry run, and teardown whatever the outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import APP, gone, owned_by

pytestmark = pytest.mark.usefixtures("isolated_env")

APP_TEST_HEADER = f"""
import json, os, sys, httpx, pytest
from pytest_chaos import probes

APP = [sys.executable, {APP!r}, "--port", "{{port}}"]

def start(service, name="web", *options):
    return service.process(name, APP + list(options), ready=probes.http("/health"), stop_timeout=0.5)
"""


def test_a_failing_tests_report_shows_the_service_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        APP_TEST_HEADER
        + """
def test_fails(service):
    web = start(service)
    httpx.get(web.url + "/nope")
    assert False, "the checkout failed"

def test_passes(service):
    start(service, "quiet")
"""
    )
    pytester.makeconftest(
        """
        def pytest_runtest_logreport(report):
            if report.when == "call":
                print("SECTIONS", report.nodeid.split("::")[1], [name for name, _ in report.sections])
        """
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- service web log -*",
            "*web/output.log (running, pid *), last 50 lines:",
            "listening on *",
            '*"GET /nope HTTP/1.1" 404 -',
        ]
    )
    output = result.stdout.str()
    assert "SECTIONS test_fails ['service web log']" in output
    assert "SECTIONS test_passes []" in output


def test_hooks_see_every_process_fault(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        seen = []
        def pytest_chaos_fault_applied(item, fault):
            seen.append(("applied", item.name, fault.kind, fault.target, fault.dry_run))
        def pytest_chaos_fault_rolled_back(item, fault):
            seen.append(("rolled back", item.name, fault.kind, fault.target, fault.dry_run))
        def pytest_sessionfinish():
            print("SEEN", seen)
        """
    )
    pytester.makepyfile(
        APP_TEST_HEADER
        + """
def test_faults(service):
    web = start(service)
    pid = web.pid
    web.pause()
    web.kill()
    web.restart()
    if os.environ.get("PYTEST_CHAOS_DRY_RUN"):
        assert web.pid == pid and httpx.get(web.url).text == "hello"  # nothing applied
    else:
        assert web.pid != pid
"""
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    assert (
        "SEEN [('applied', 'test_faults', 'pause', 'web', False), "
        "('applied', 'test_faults', 'kill', 'web', False), "
        "('rolled back', 'test_faults', 'pause', 'web', False), "
        "('applied', 'test_faults', 'restart', 'web', False), "
        "('rolled back', 'test_faults', 'kill', 'web', False), "
        "('rolled back', 'test_faults', 'restart', 'web', False)]"
    ) in result.stdout.str()


def test_dry_run_records_process_faults_without_applying_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_DRY_RUN", "1")
    pytester.makeconftest(
        """
        seen = []
        def pytest_chaos_fault_applied(item, fault):
            seen.append((fault.kind, fault.dry_run))
        def pytest_sessionfinish():
            print("SEEN", seen)
        """
    )
    pytester.makepyfile(
        APP_TEST_HEADER
        + """
def test_rehearsal(service):
    web = start(service)
    pid = web.pid
    with web.pause():
        assert httpx.get(web.url, timeout=5).text == "hello"
    web.kill()
    web.restart()
    assert web.pid == pid and httpx.get(web.url, timeout=5).text == "hello"
"""
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    assert "SEEN [('pause', True), ('kill', True), ('restart', True)]" in result.stdout.str()


def test_teardown_stops_every_process_whatever_the_outcome(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = tmp_path / "pids.jsonl"
    pytester.makepyfile(
        APP_TEST_HEADER
        + f"""
def remember(*services):
    with open({str(record)!r}, "a") as out:
        for svc in services:
            children = [int(l.split()[1]) for l in svc.logs().splitlines() if l.startswith("child ")]
            out.write(json.dumps([svc.pid, *children]) + "\\n")

def test_passes(service):
    remember(start(service, "web", "--child", "--escapee"))

def test_fails(service):
    web = start(service, "web", "--child")
    web.pause()
    remember(web)
    assert False

def test_raises(service):
    remember(start(service, "a"), start(service, "b", "--ignore-term"))
    raise RuntimeError("boom")

@pytest.fixture
def web(service):
    web = start(service)
    remember(web)
    yield web
    raise RuntimeError("a broken teardown of the user's own")

def test_fixture_teardown_fails(web):
    pass

def test_with_hogs(service, tmp_path):
    hog = service.cpu_hog(1, seconds=60)
    service.memory_hog(8, seconds=60)
    service.disk_fill(tmp_path, 1)
    with open({str(record)!r}, "a") as out:
        out.write(json.dumps(hog.pids) + "\\n")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=2, errors=1)
    pids = [pid for line in record.read_text().splitlines() for pid in json.loads(line)]
    assert len(pids) == 9
    assert [pid for pid in pids if not gone(pid)] == []
    assert not list(pytester.path.rglob("pytest-chaos-fill-*"))


def test_an_interrupted_run_leaves_no_process(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Ctrl-C during a test: its processes still go at teardown; the pytest run (in a
    subprocess) leaves no marked process behind once it ends."""
    inner_pid = tmp_path / "pid"
    pytester.makepyfile(
        APP_TEST_HEADER
        + f"""
def test_interrupted(service):
    open({str(inner_pid)!r}, "w").write(str(os.getpid()))
    start(service, "web", "--child")
    service.cpu_hog(1, seconds=60)
    raise KeyboardInterrupt
"""
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert owned_by(int(inner_pid.read_text())) == []


def test_a_test_that_starts_no_service_makes_nothing(pytester: pytest.Pytester) -> None:
    """Asking for ``service`` costs no folder and no process until a service starts."""
    pytester.makepyfile(
        """
        def test_nothing(service, tmp_path_factory):
            assert len(service) == 0
            assert not list(tmp_path_factory.getbasetemp().glob("services-*"))
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_public_names_load_on_first_use() -> None:
    """``from pytest_chaos import probes, ServiceManager, ...`` works, yet loading the
    plugin imports neither services, in-process faults, experiments nor probes (it stays
    cheap for suites without them)."""
    script = (
        "import importlib, sys, pytest_chaos.plugin\n"
        "for name in pytest_chaos.plugin.pytest_plugins: importlib.import_module(name)\n"
        "assert 'pytest_chaos.services' not in sys.modules\n"
        "assert 'pytest_chaos.inject' not in sys.modules\n"
        "assert 'pytest_chaos.experiment.run' not in sys.modules\n"
        "assert 'pytest_chaos.steady' not in sys.modules\n"
        "import pytest_chaos\n"
        "from pytest_chaos import probes\n"
        "print(sorted(name for name in pytest_chaos.__all__ if getattr(pytest_chaos, name)))\n"
        "print(probes.__all__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == [
        "['ChaosConfig', 'ChaosError', 'ChaosHTTP', 'ChaosMonkey', 'ChaosToxiproxy', "
        "'ContainerService', 'Deviated', 'Experiment', 'ExperimentError', 'FaultRecord', "
        "'FlagOffWarning', 'FlagStore', 'Halted', 'Judge', 'Load', 'ManualClock', 'Metrics', "
        "'NotSteady', 'OfrepServer', 'ProcessService', 'ReadinessError', 'Router', "
        "'ServerThread', 'ServiceError', 'ServiceManager', 'StatisticalJudge', 'StoreProvider', "
        "'TestSeeds', 'ThresholdJudge', 'Toxiproxy', 'ToxiproxyError', '__version__', 'expect', "
        "'faults', 'probes', 'tolerances']",
        "['Probe', 'ProbeRun', 'call', 'http', 'log', 'slo', 'tcp']",
    ]
