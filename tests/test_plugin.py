"""The plugin as a user meets it, through pytester: options, header, seeds, the marker, and
the toxiproxy fixture undoing whatever a test did."""

from __future__ import annotations

import re

import httpx
import pytest

from .servers import ApiServer

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions must not inherit chaos settings from the outer environment."""
    for name in ("PYTEST_CHAOS_SEED", "PYTEST_CHAOS_TOXIPROXY", "PYTEST_CHAOS_DRY_RUN"):
        monkeypatch.delenv(name, raising=False)


def header_seed(result: pytest.RunResult) -> int:
    match = re.search(r"^chaos: seed=(\d+) toxiproxy=\S+", result.stdout.str(), re.M)
    assert match, result.stdout.str()
    return int(match.group(1))


def test_header_shows_seed_and_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--chaos-seed", "42")
    result.stdout.fnmatch_lines(["chaos: seed=42 toxiproxy=embedded"])
    assert result.ret == 0


def test_fresh_seed_then_last_replays_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    first = header_seed(pytester.runpytest())
    second = header_seed(pytester.runpytest())
    replay = header_seed(pytester.runpytest("--chaos-seed", "last"))
    assert replay == second
    assert first != second  # fresh seeds differ (2**32 of them)


def test_last_without_a_previous_run_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--chaos-seed", "last", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-seed=last: no previous chaos seed*"])


def test_precedence_cli_env_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    pytester.makeini("[pytest]\nchaos_seed = 6\n")
    assert header_seed(pytester.runpytest()) == 6
    monkeypatch.setenv("PYTEST_CHAOS_SEED", "5")
    assert header_seed(pytester.runpytest()) == 5
    assert header_seed(pytester.runpytest("--chaos-seed=7")) == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chaos-seed=-3"], "*--chaos-seed='-3': expected a non-negative integer*"),
        (["--chaos-toxiproxy=nowhere"], "*--chaos-toxiproxy='nowhere': expected 'embedded'*"),
        (["--chaos-toxiproxy=binary=/no/such/server"], "*toxiproxy-server not found*"),
        (
            ["--chaos-toxiproxy=a=http://127.0.0.1:1", "--chaos-toxiproxy=embedded"],
            "*several values are only allowed as NAME=URL pairs*",
        ),
    ],
)
def test_bad_options_stop_at_start_up(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_dry_run_env_names_the_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    monkeypatch.setenv("PYTEST_CHAOS_DRY_RUN", "maybe")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PYTEST_CHAOS_DRY_RUN='maybe': expected one of*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        (
            "chaos(weight=11)",
            "*test_bad: @pytest.mark.chaos: weight=11 is not allowed; use an integer from 1 to 10*",
        ),
        ("chaos(weight='5')", "*weight='5' is not allowed*"),
        ("chaos(5)", "*takes keyword arguments only*"),
        ("chaos(wieght=5)", "*unknown argument 'wieght'; allowed: weight, hypothesis, tags*"),
        ("chaos(hypothesis='')", "*hypothesis='' is not allowed*"),
        ("chaos(tags=[1])", "*tags=?1? is not allowed*"),
    ],
)
def test_marker_errors_name_test_and_value(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(f"import pytest\n@pytest.mark.{marker}\ndef test_bad(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_marker_selects_chaos_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.chaos(weight=3, hypothesis="it holds", tags=["net"])
        def test_chaotic(): pass
        def test_plain(): pass
        """
    )
    pytester.runpytest("-m", "chaos").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest("-m", "not chaos").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest("--strict-markers").assert_outcomes(passed=2)


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:chaos", "--chaos-seed=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --chaos-seed=1*"])


def test_seed_streams_replay_per_test(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile(
        """
        def test_a(chaos_seeds):
            print("\\nDRAW A", chaos_seeds("jitter").random())
        def test_b(chaos_seeds):
            print("\\nDRAW B", chaos_seeds("jitter").random(), chaos_seeds("monkey").random())
        """
    )

    def draws(*args: str) -> list[str]:
        out = pytester.runpytest("-s", "--chaos-seed=9", *args).stdout.lines
        return sorted(line for line in out if line.startswith("DRAW "))

    both = draws()
    assert draws("-k", "test_b") == [line for line in both if line.startswith("DRAW B")]
    assert len(both) == 2
    assert draws(f"{path.name}::test_b", f"{path.name}::test_a") == both  # reversed order
    other = pytester.runpytest("-s", "--chaos-seed=10").stdout.lines
    assert sorted(line for line in other if line.startswith("DRAW ")) != both


FAILING_SUITE = """
import pytest

@pytest.mark.chaos
def test_fails_with_faults(toxiproxy):
    made = toxiproxy.proxy("made", upstream="127.0.0.1:9")
    made.latency(500)
    shared = toxiproxy["shared"]
    shared.limit_data(10)
    shared.disable()
    assert False, "the system under test broke"

@pytest.mark.chaos
def test_interrupted(toxiproxy):
    toxiproxy["shared"].timeout(0)
    toxiproxy.proxy("interrupted", upstream="127.0.0.1:9")
    raise KeyboardInterrupt
"""


def test_failing_and_interrupted_tests_leave_nothing_behind(
    pytester: pytest.Pytester, embedded_server: ApiServer
) -> None:
    embedded_server.clear()
    with embedded_server.client() as http:
        http.post("/proxies", json={"name": "shared", "upstream": "127.0.0.1:9"})
        pytester.makepyfile(FAILING_SUITE)
        # in a subprocess: the KeyboardInterrupt must not reach this test run
        result = pytester.runpytest_subprocess(f"--chaos-toxiproxy={embedded_server.url}")
        result.stdout.fnmatch_lines(["*the system under test broke*", "*KeyboardInterrupt*"])
        proxies = http.get("/proxies").json()
    assert list(proxies) == ["shared"]
    assert proxies["shared"]["enabled"] is True
    assert proxies["shared"]["toxics"] == []
    embedded_server.clear()


def test_dry_run_records_faults_without_applying(
    pytester: pytest.Pytester, embedded_server: ApiServer
) -> None:
    embedded_server.clear()
    pytester.makeconftest(
        """
        seen = []
        def pytest_chaos_fault_applied(item, fault):
            seen.append(("applied", item.name, fault.kind, fault.dry_run))
        def pytest_chaos_fault_rolled_back(item, fault):
            seen.append(("rolled back", item.name, fault.kind, fault.dry_run))
        def pytest_sessionfinish():
            print("SEEN", seen)
        """
    )
    pytester.makepyfile(
        """
        import httpx
        def test_rehearsal(toxiproxy):
            proxy = toxiproxy.proxy("db", upstream="127.0.0.1:9")
            with proxy.latency(100):
                pass
            proxy.disable()
            state = httpx.get(toxiproxy.url + "/proxies/db").json()
            assert state["toxics"] == [] and state["enabled"] is True
        """
    )
    result = pytester.runpytest("-s", "--chaos-dry-run", f"--chaos-toxiproxy={embedded_server.url}")
    result.assert_outcomes(passed=1)
    assert (
        "SEEN [('applied', 'test_rehearsal', 'latency', True), "
        "('rolled back', 'test_rehearsal', 'latency', True), "
        "('applied', 'test_rehearsal', 'down', True), "
        "('rolled back', 'test_rehearsal', 'down', True)]"
    ) in result.stdout.str()
    assert httpx.get(embedded_server.url + "/proxies").json() == {}


def test_embedded_backend_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket, threading, time
        import pytest

        @pytest.fixture
        def echo():
            server = socket.create_server(("127.0.0.1", 0))
            def serve():
                conn, _ = server.accept()
                with conn:
                    while data := conn.recv(1024):
                        conn.sendall(data)
            threading.Thread(target=serve, daemon=True).start()
            yield "127.0.0.1:%d" % server.getsockname()[1]
            server.close()

        @pytest.mark.chaos(weight=2)
        def test_latency(toxiproxy, echo):
            link = toxiproxy.proxy("echo", upstream=echo)
            with socket.create_connection((link.host, link.port)) as sock:
                with link.latency(ms=150):
                    start = time.monotonic()
                    sock.sendall(b"x")
                    assert sock.recv(1) == b"x"
                    assert time.monotonic() - start >= 0.14
                start = time.monotonic()
                sock.sendall(b"y")
                assert sock.recv(1) == b"y"
                assert time.monotonic() - start < 0.1
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_xdist_workers_are_isolated(pytester: pytest.Pytester, embedded_server: ApiServer) -> None:
    embedded_server.clear()
    pytester.makepyfile(
        """
        import pytest, time

        @pytest.mark.parametrize("n", range(6))
        def test_same_name(toxiproxy, n):
            proxy = toxiproxy.proxy("db", upstream="127.0.0.1:9")
            proxy.latency(n)
            time.sleep(0.05)
            assert [t.attributes["latency"] for t in proxy.toxics()] == [n]
        """
    )
    shared = pytester.runpytest("-n", "2", f"--chaos-toxiproxy={embedded_server.url}")
    shared.assert_outcomes(passed=6)
    embedded = pytester.runpytest("-n", "2")
    embedded.assert_outcomes(passed=6)
    assert httpx.get(embedded_server.url + "/proxies").json() == {}
