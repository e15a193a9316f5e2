"""The sweep at session start, against a real Toxiproxy and real processes: what dead runs
of this machine left goes, what live runs and runs elsewhere made stays, and one line says
so; nothing raises."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_chaos._net.processes import wait_until
from pytest_chaos.leftovers import register
from pytest_chaos.leftovers.identity import RunIdentity, process_state
from pytest_chaos.leftovers.processes import RUN_VARIABLE
from pytest_chaos.leftovers.sweep import sweep_dead_runs

from ..servers import ApiServer, free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def dead_identity() -> RunIdentity:
    """The identity of a process that has ended."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        identity = RunIdentity.of_process(child.pid)
    return identity


def test_dead_runs_proxies_and_toxics_go_the_rest_stays(real_server: ApiServer) -> None:
    real_server.clear()
    dead, alive = dead_identity(), RunIdentity.new()
    elsewhere = replace(dead, host="ci-7")
    with real_server.client() as http:

        def proxy(name: str, *toxics: str) -> None:
            http.post("/proxies", json={"name": name, "upstream": "127.0.0.1:9"}).raise_for_status()
            for toxic in toxics:
                body = {"name": toxic, "type": "latency", "attributes": {"latency": 1}}
                http.post(f"/proxies/{name}/toxics", json=body).raise_for_status()

        proxy(dead.tag("a"), dead.tag("latency_downstream"))
        proxy(dead.tag("b"), "untagged_on_a_dead_proxy")
        proxy("shared", dead.tag("slow"), alive.tag("mine"), elsewhere.tag("theirs"), "kept")
        proxy(alive.tag("live"))
        proxy(elsewhere.tag("far"))
        line = sweep_dead_runs([real_server.url], Path("/nonexistent"))
        state = http.get("/proxies").json()
    assert line == (
        f"chaos: removed what dead runs ({dead.describe()}) left: 2 proxies and 3 toxics at "
        f"{real_server.url}; left alone 1 proxy and 1 toxic of runs on ci-7 (whether they "
        "are alive cannot be seen from here)"
    )
    assert sorted(state) == sorted(["shared", alive.tag("live"), elsewhere.tag("far")])
    assert sorted(toxic["name"] for toxic in state["shared"]["toxics"]) == sorted(
        [alive.tag("mine"), elsewhere.tag("theirs"), "kept"]
    )
    assert sweep_dead_runs([real_server.url], Path("/nonexistent")) == (
        "chaos: left alone 1 proxy and 1 toxic of runs on ci-7 (whether they are alive "
        "cannot be seen from here)"
    )
    real_server.clear()
    assert sweep_dead_runs([real_server.url], Path("/nonexistent")) is None


def test_a_server_it_cannot_reach_is_named_not_raised(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = sweep_dead_runs([url], tmp_path)
    assert line is not None
    assert line.startswith(f"chaos: could not look at {url} (URLError: ")


def test_dead_runs_fill_files_and_processes_go(tmp_path: Path) -> None:
    folder = tmp_path / "register"
    dead = dead_identity()
    dead_file, live_file = (
        tmp_path / "pytest-chaos-fill-dead.bin",
        tmp_path / "pytest-chaos-fill-live.bin",
    )
    alive = RunIdentity.new()
    for file, identity in ((dead_file, dead), (live_file, alive)):
        register.enter_fill(file, identity.suffix, folder)
        file.write_bytes(b"x")
    register.enter_run(dead.suffix, folder)  # its supervisor died without leaving
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    env = {**os.environ, RUN_VARIABLE: dead.suffix}
    with subprocess.Popen(sleeper, env=env, start_new_session=True) as orphan:
        marked = f"{RUN_VARIABLE}={dead.suffix}".encode()
        environ = Path(f"/proc/{orphan.pid}/environ")
        assert wait_until(lambda: marked in environ.read_bytes(), 60)  # it has exec'd
        line = sweep_dead_runs([], folder)
        assert wait_until(lambda: process_state(orphan.pid) in (None, "Z"), 60)
    assert line == (
        f"chaos: removed what dead runs ({dead.describe()}) left: 1 disk fill file; 1 process"
    )
    assert not dead_file.exists() and live_file.exists()
    assert register.runs(folder) == []
    assert [entry.name for entry in (folder / "fills").iterdir()] == [live_file.name + alive.suffix]


def test_credentials_in_the_url_are_sent_as_basic_authentication() -> None:
    """As httpx (the fixtures' client) sends them: a Toxiproxy behind a proxy that wants
    a password is swept too."""
    import base64
    import http.server
    import threading

    seen: list[str | None] = []

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://ops:p%40ss@127.0.0.1:{server.server_address[1]}"
        assert sweep_dead_runs([url], Path("/nonexistent")) is None
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["Basic " + base64.b64encode(b"ops:p@ss").decode()]
