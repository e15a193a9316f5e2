"""Secrets stay secret, as a user meets it through pytester: a token in a probe URL, in a
service's log and in captured output reaches none of the artefacts (the journals, the
report, JUnit XML, Allure, the terminal), on one process and across pytest-xdist; users
add names of their own on the command line, in the ini file or in the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..servers import isolate_chaos_env

pytestmark = pytest.mark.usefixtures("isolated_env")

SECRETS = ("PASSWORD1", "TOKEN2", "KEY3", "HUNTER4", "PRINTED5")
#: only secret when the user says so
SESSION = "SESSION6"

CONFTEST = """
import http.server, threading
import pytest

class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 500 if self.path.startswith("/broken") else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

@pytest.fixture
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
"""

SUITE = """
import sys
import pytest
from pytest_chaos import probes

QUERY = "token=TOKEN2&api_key=KEY3&sessionid=SESSION6"

@pytest.mark.chaos
def test_holds(chaos, site):
    url = f"http://user:PASSWORD1@{site}/health?{QUERY}"
    chaos.experiment("holds", steady_state=[probes.http(url)], method=[], duration_s=0.1)

@pytest.mark.chaos
def test_not_steady(chaos, site, service):
    service.process("db", [sys.executable, "-c",
        "print('connecting with password=HUNTER4', flush=True); import time; time.sleep(60)"],
        ready=probes.log("connecting"))
    print("the client's Authorization: Bearer PRINTED5")
    url = f"http://user:PASSWORD1@{site}/broken?{QUERY}"
    chaos.experiment("broken", steady_state=[probes.http(url)], method=[], duration_s=0.1)
"""

ARTEFACTS = (
    "--chaos-journal-dir",
    "journals",
    "--chaos-report",
    "report",
    "--junitxml",
    "junit.xml",
    "--alluredir",
    "allure",
    "-p",
    "no:randomly",
)


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)
    monkeypatch.delenv("PYTEST_CHAOS_REDACT", raising=False)


def everything_written(pytester: pytest.Pytester, output: str) -> dict[str, str]:
    """The terminal's output and every file the run wrote, by name."""
    written = {"terminal": output}
    for folder in ("journals", "report", "allure"):
        for path in (pytester.path / folder).rglob("*"):
            if path.is_file():
                written[str(path.relative_to(pytester.path))] = path.read_text(errors="replace")
    written["junit.xml"] = (pytester.path / "junit.xml").read_text()
    return written


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_no_artefact_holds_a_secret(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytest.importorskip("allure_pytest")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess(*ARTEFACTS, *workers)
    result.assert_outcomes(passed=1, errors=1)
    written = everything_written(pytester, result.stdout.str() + result.stderr.str())
    assert len([name for name in written if name.startswith("journals/")]) == 2
    assert any(name.endswith("-attachment.json") for name in written)  # Allure's journals
    leaks = {name: secret for name, text in written.items() for secret in SECRETS if secret in text}
    assert leaks == {}
    terminal = written["terminal"]
    assert "http://***@127.0.0.1:" in terminal and "token=***&api_key=***" in terminal
    assert "password=***" in terminal  # the service's log, in the failure's report
    assert "Authorization: ***" in terminal  # the captured output
    assert (
        all(
            SESSION in written[f"journals/{name}"]
            for name in ("test_no_artefact_holds_a_secret.py_test_holds.json",)
        )
        or SESSION in terminal
    )  # not a secret by default


@pytest.mark.parametrize("spelling", ["option", "ini", "environment"])
def test_users_add_names_to_redact(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(SUITE)
    args = ["--chaos-journal-dir", "journals", "-p", "no:randomly"]
    if spelling == "option":
        args += ["--chaos-redact", "^session"]
    elif spelling == "ini":
        pytester.makeini("[pytest]\nchaos_redact = ^session\n")
    else:
        monkeypatch.setenv("PYTEST_CHAOS_REDACT", "^session")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1, errors=1)
    written = [path.read_text() for path in Path(pytester.path, "journals").iterdir()]
    written.append(result.stdout.str())
    assert not [text for text in written if SESSION in text]
    assert all("sessionid=***" in text for text in written)


def test_a_bad_pattern_stops_the_session_at_start_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--chaos-redact", "(")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--chaos-redact='(': not a regular expression (*); give a regular expression for the names of secret values*"
        ]
    )


def test_the_header_shows_no_credentials(pytester: pytest.Pytester) -> None:
    """A Toxiproxy behind a proxy that wants a password: the header and the line about
    leftovers (the server does not answer here) name it without the password."""
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--chaos-toxiproxy", "http://ops:HUNTER4@127.0.0.1:9")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "chaos: seed=* toxiproxy=http://***@127.0.0.1:9",
            "chaos: could not look at http://***@127.0.0.1:9 (*",
        ]
    )
    assert "HUNTER4" not in result.stdout.str()
