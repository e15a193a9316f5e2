"""The plugin as a user meets it, through pytester: options, header, seeds, the marker, and
the toxiproxy fixture undoing whatever a test did."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from pytest_chaos.proxy.backends import embedded_argv

from .servers import (
    ApiServer,
    free_port,
    isolate_chaos_env,
    start_logged_server,
    stop_server,
)

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions must not inherit chaos settings from the outer environment, and the
    processes they start (the embedded server, subprocess runs) must run this checkout."""
    isolate_chaos_env(monkeypatch)


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
            state = httpx.get(toxiproxy.url + "/proxies/" + proxy.name).json()
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


NAMES_SUITE = """
import os
from pytest_chaos.plugin.session import chaos_session

def test_names(toxiproxy, request):
    identity = chaos_session(request.config).supervisor.identity
    SUFFIX = identity.suffix if os.environ["OWNED"] == "no" else ""
    assert identity.pid == os.getpid()
    link = toxiproxy.proxy("db", upstream="127.0.0.1:9")
    assert link.name == "db" + SUFFIX
    toxic = link.latency(10)
    assert toxic.name == "latency_downstream" + SUFFIX
    cut = link.add_toxic("timeout", name="cut", timeout=0)
    assert cut.name == "cut" + SUFFIX
    assert toxiproxy["db"].name == link.name
    assert link.toxic("latency_downstream").name == toxic.name
    assert link.toxic("cut").name == cut.name
    assert [(f.target, f.details["toxic"]) for f in toxiproxy.faults] == [
        ("db", "latency_downstream"), ("db", "cut")
    ]
"""


@pytest.mark.parametrize("owned", ["yes", "no"])
def test_names_carry_the_run_on_a_server_it_does_not_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, real_server: ApiServer, owned: str
) -> None:
    """On a URL backend the run's proxies and toxics are named with its identity, found by
    the names the test gave, and reported by them; on a server of its own, as given."""
    real_server.clear()
    monkeypatch.setenv("OWNED", owned)
    pytester.makepyfile(NAMES_SUITE)
    args = [] if owned == "yes" else [f"--chaos-toxiproxy={real_server.url}"]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert httpx.get(real_server.url + "/proxies").json() == {}


# -- the fixture's seed, sessions, clients and hosts ------------------------------------------

ECHO_CONFTEST = """
import socket, threading
import pytest

@pytest.fixture(scope="session")
def echo():
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    def serve(conn):
        with conn:
            try:
                while data := conn.recv(1024):
                    conn.sendall(data)
            except OSError:
                pass
    def accept():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    yield "127.0.0.1:%d" % server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
    server.close()
"""

REPLAY_SUITE = """
import pathlib, socket

def hits(toxiproxy, echo, connections):
    # a limit_data(0) toxic at toxicity 0.5 on the proxy "db": which connections it cuts
    link = toxiproxy.proxy("db", upstream=echo)
    link.limit_data(0, toxicity=0.5)
    pattern = ""
    for _ in range(connections):
        with socket.create_connection((link.host, link.port), timeout=10) as sock:
            sock.sendall(b"x")
            try:
                answer = sock.recv(1)
            except ConnectionResetError:
                answer = b""
            pattern += "." if answer == b"x" else "X"
    return pattern

def test_other(toxiproxy, echo):
    assert len(hits(toxiproxy, echo, 7)) == 7

def test_pattern(toxiproxy, echo):
    # a file, not print: xdist workers' output does not reach the terminal
    pathlib.Path("pattern.txt").write_text(hits(toxiproxy, echo, 30))
"""


def test_toxicity_replays_per_test(pytester: pytest.Pytester) -> None:
    """The fixture seeds each proxy from the session seed and the test: which connections a
    toxicity-0.5 toxic hits is the same alone, after another test, in reverse order and on
    an xdist worker, and changes with the seed."""
    pytester.makeconftest(ECHO_CONFTEST)
    path = pytester.makepyfile(REPLAY_SUITE)
    written = pytester.path / "pattern.txt"

    def pattern(*args: str) -> str:
        written.unlink(missing_ok=True)
        result = pytester.runpytest("-p", "no:randomly", *args)
        assert result.ret == 0, result.stdout.str()
        return written.read_text()

    both = pattern("--chaos-seed=1234")
    assert len(both) == 30
    assert "X" in both and "." in both, both  # the toxic hit some connections, not all
    assert pattern("--chaos-seed=1234", "-k", "test_pattern") == both
    reversed_order = (f"{path.name}::test_pattern", f"{path.name}::test_other")
    assert pattern("--chaos-seed=1234", *reversed_order) == both
    assert pattern("--chaos-seed=1234", "-n", "2") == both
    assert pattern("--chaos-seed=4321") != both


SESSION_CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def shared(toxiproxy_session, echo):
    proxy = toxiproxy_session.proxy("shared", upstream=echo)
    print("\\nSHARED", proxy.listen)
    return proxy
"""

SESSION_FIRST = """
import httpx

def test_first(toxiproxy, shared):
    found = toxiproxy["shared"]
    found.latency(100)
    found.disable()
    state = httpx.get(toxiproxy.url + "/proxies/" + found.name).json()
    assert state["enabled"] is False and len(state["toxics"]) == 1
"""

SESSION_SECOND = """
import socket
import httpx

def test_second(toxiproxy, shared):
    state = httpx.get(toxiproxy.url + "/proxies").json()
    assert list(state) == [shared.name], state
    assert state[shared.name]["toxics"] == [] and state[shared.name]["enabled"] is True
    assert state[shared.name]["listen"] == shared.listen
    with socket.create_connection((shared.host, shared.port), timeout=10) as sock:
        sock.sendall(b"ok")
        assert sock.recv(2) == b"ok"
"""


def test_session_proxies_outlive_tests_and_end_with_the_session(
    pytester: pytest.Pytester, server: ApiServer
) -> None:
    pytester.makeconftest(ECHO_CONFTEST + SESSION_CONFTEST)
    pytester.makepyfile(test_a_first=SESSION_FIRST, test_b_second=SESSION_SECOND)
    result = pytester.runpytest("-s", "-p", "no:randomly", f"--chaos-toxiproxy={server.url}")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("SHARED ") == 1, "one proxy for the whole session"
    assert httpx.get(server.url + "/proxies").json() == {}


PYTHON_CLIENT_SUITE = """
import httpx
from toxiproxy.api import APIConsumer

def test_python_client(toxiproxy_python, toxiproxy):
    made = toxiproxy_python.create(upstream="127.0.0.1:9", name="made")
    made.add_toxic(type="latency", attributes={"latency": 100})
    keep = toxiproxy_python.get_proxy("keep")
    keep.add_toxic(type="bandwidth", name="extra", attributes={"rate": 1})
    keep.destroy_toxic("kept")
    keep.disable()
    toxiproxy_python.destroy(toxiproxy_python.get_proxy("gone"))
    httpx.post(toxiproxy.url + "/proxies/keep/toxics/tuned",
               json={"toxicity": 0.5, "attributes": {"latency": 999}}).raise_for_status()
    state = httpx.get(toxiproxy.url + "/proxies").json()
    assert sorted(state) == ["keep", "made"]
    assert [t["name"] for t in state["made"]["toxics"]] == ["latency_downstream"]
    assert sorted(t["name"] for t in state["keep"]["toxics"]) == ["extra", "tuned"]
    assert state["keep"]["enabled"] is False

def test_the_client_is_pointed_back():
    assert (APIConsumer.host, APIConsumer.port) == ("127.0.0.1", 8474)
"""


def test_toxiproxy_python_changes_are_reverted(
    pytester: pytest.Pytester, server: ApiServer
) -> None:
    pytest.importorskip("toxiproxy", reason="toxiproxy-python is the 'toxiproxy' extra")
    with server.client() as http:
        for name in ("keep", "gone"):
            http.post("/proxies", json={"name": name, "upstream": "127.0.0.1:9"})
            http.post(
                f"/proxies/{name}/toxics",
                json={"name": "kept", "type": "slow_close", "attributes": {"delay": 5}},
            ).raise_for_status()
        tuned = {"name": "tuned", "type": "latency", "attributes": {"latency": 5, "jitter": 1}}
        http.post("/proxies/keep/toxics", json=tuned).raise_for_status()
        before = http.get("/proxies").json()
        pytester.makepyfile(PYTHON_CLIENT_SUITE)
        result = pytester.runpytest(f"--chaos-toxiproxy={server.url}", "-p", "no:randomly")
        result.assert_outcomes(passed=2)
        after = http.get("/proxies").json()
    assert sorted(after) == ["gone", "keep"]
    for name, proxy in after.items():
        # toxics come back, the deleted one recreated last; compare them by name
        assert sorted(proxy.pop("toxics"), key=lambda t: t["name"]) == sorted(
            before[name].pop("toxics"), key=lambda t: t["name"]
        )
        assert proxy == before[name]


HOSTS_SUITE = """
import httpx, pytest
from pytest_chaos.leftovers.identity import untag

def names(url):
    return sorted(untag(name) for name in httpx.get(url + "/proxies").json())

def test_hosts(toxiproxy):
    test_hosts.client = toxiproxy
    assert toxiproxy.url == {a!r}
    near = toxiproxy.proxy("near", upstream="127.0.0.1:9")
    near.latency(10)
    far = toxiproxy.host("b").proxy("far", upstream="127.0.0.1:9")
    far.latency(20)
    toxiproxy.host("b")["pre"].limit_data(5)
    toxiproxy.host("a").proxy("also_near", upstream="127.0.0.1:9")
    assert names({a!r}) == ["also_near", "near"]
    assert names({b!r}) == ["far", "pre"]
    assert len(httpx.get({b!r} + "/proxies/pre").json()["toxics"]) == 1  # a toxic of this run
    with pytest.raises(KeyError, match="no Toxiproxy host named 'c'; known hosts: a, b"):
        toxiproxy.host("c")

def test_connections_to_every_host_are_closed_after_the_test():
    assert test_hosts.client._http.is_closed
    assert test_hosts.client.host("b")._http.is_closed

def test_single_host(toxiproxy):
    with pytest.raises(KeyError, match="known hosts: none"):
        toxiproxy.host("b")
"""


def test_several_hosts(
    pytester: pytest.Pytester, server: ApiServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = free_port()
    log = tmp_path_factory.mktemp("host-b") / "server.log"
    other = start_logged_server("embedded", embedded_argv(port, seed=2), port, log)
    try:
        with httpx.Client(base_url=other.url, timeout=10) as http:
            http.post("/proxies", json={"name": "pre", "upstream": "127.0.0.1:9"})
        pytester.makepyfile(HOSTS_SUITE.format(a=server.url, b=other.url))
        hosts = ("--chaos-toxiproxy", f"a={server.url}", "--chaos-toxiproxy", f"b={other.url}")
        result = pytester.runpytest(*hosts, "-p", "no:randomly", "-k", "not single")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines([f"chaos: seed=* toxiproxy=a={server.url},b={other.url}"])
        assert httpx.get(server.url + "/proxies").json() == {}
        remaining = httpx.get(other.url + "/proxies").json()
        assert list(remaining) == ["pre"] and remaining["pre"]["toxics"] == []
        single = pytester.runpytest(f"--chaos-toxiproxy={server.url}", "-k", "test_single_host")
        single.assert_outcomes(passed=1)
    finally:
        stop_server(other)


# -- interrupted runs: tests/test_when_things_go_wrong.py ----------------------------------------


# -- hooks ----------------------------------------------------------------------------------------

HOOK_CONFTEST = """
import json
import pytest

events = []

def pytest_chaos_fault_applied(item, fault):
    assert isinstance(item, pytest.Item) or item is None
    events.append(["applied", item and item.name, fault.kind, fault.target,
                   fault.rolled_back_at is None])

def pytest_chaos_fault_rolled_back(item, fault):
    events.append(["rolled back", item and item.name, fault.kind, fault.target,
                   fault.rolled_back_at is not None])

def pytest_runtest_logreport(report):
    events.append(["report", report.nodeid.rpartition("::")[2], report.when, report.outcome])

def pytest_sessionfinish():
    print("\\nEVENTS " + json.dumps(events))

@pytest.fixture(scope="session")
def session_fault(toxiproxy_session):
    toxiproxy_session.proxy("session", upstream="127.0.0.1:9").bandwidth(1)
"""

HOOK_SUITE = """
def test_breaks(toxiproxy, session_fault):
    db = toxiproxy.proxy("db", upstream="127.0.0.1:9")
    db.latency(100)
    db.disable()
    assert False, "the system under test broke"
"""


def test_hooks_see_faults_rolled_back_at_teardown_of_a_failing_test(
    pytester: pytest.Pytester, server: ApiServer
) -> None:
    pytester.makeconftest(HOOK_CONFTEST)
    pytester.makepyfile(HOOK_SUITE)
    result = pytester.runpytest("-s", f"--chaos-toxiproxy={server.url}")
    result.assert_outcomes(failed=1)
    line = next(line for line in result.stdout.lines if line.startswith("EVENTS "))
    assert json.loads(line.removeprefix("EVENTS ")) == [
        ["applied", None, "bandwidth", "session", True],
        ["report", "test_breaks", "setup", "passed"],
        ["applied", "test_breaks", "latency", "db", True],
        ["applied", "test_breaks", "down", "db", True],
        ["report", "test_breaks", "call", "failed"],
        ["rolled back", "test_breaks", "down", "db", True],
        ["rolled back", "test_breaks", "latency", "db", True],
        # the last test's teardown also ends the session's fixtures
        ["rolled back", None, "bandwidth", "session", True],
        ["report", "test_breaks", "teardown", "passed"],
    ]
    assert httpx.get(server.url + "/proxies").json() == {}
