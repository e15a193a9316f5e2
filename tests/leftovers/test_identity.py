"""A run's identity in names, and whether the run that made a name is alive, judged with
real processes."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from pytest_chaos._net.processes import wait_until
from pytest_chaos.leftovers.identity import (
    ALIVE,
    DEAD,
    ELSEWHERE,
    RunIdentity,
    parse,
    process_state,
    untag,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_tagged_name_says_which_run_made_it() -> None:
    me = RunIdentity.new()
    name = me.tag("latency_downstream")
    assert name == (
        f"latency_downstream.pytest-chaos.{me.host}.{me.machine}.{me.pid}.{me.start}.{me.session}"
    )
    assert RunIdentity.new().session != me.session  # another session of this process
    assert parse(name) == ("latency_downstream", me)
    assert untag(name) == "latency_downstream"
    assert me.tag("a.b-c").startswith("a.b-c.pytest-chaos.") and untag(me.tag("a.b-c")) == "a.b-c"


@pytest.mark.parametrize(
    "name",
    [
        "db",
        "db.pytest-chaos.host",
        "db.pytest-chaos.host.xyz.1.2.abcdef",
        "db.pytest-chaos.host.0a1b2c3d.1.2",
        "db.pytest-chaos.h.0a1b2c3d.x.2.abcdef",
    ],
)
def test_names_without_a_whole_identity_are_nobody_s(name: str) -> None:
    assert parse(name) is None and untag(name) == name


@linux_only
def test_a_run_is_alive_while_its_process_runs_and_dead_after() -> None:
    with subprocess.Popen(SLEEPER) as child:
        identity = RunIdentity.of_process(child.pid)
        assert identity.start > 0
        assert identity.status() == ALIVE
        child.kill()
        assert wait_until(lambda: process_state(child.pid) == "Z", 30)
        assert identity.status() == DEAD  # a zombie has ended
    assert identity.status() == DEAD  # reaped: no such process


@linux_only
def test_a_reused_pid_is_not_the_run() -> None:
    me = RunIdentity.new()
    assert me.status() == ALIVE
    assert replace(me, start=me.start + 1).status() == DEAD


def test_runs_of_other_machines_cannot_be_judged() -> None:
    me = RunIdentity.new()
    other_machine = "00000000" if me.machine != "00000000" else "11111111"
    assert replace(me, host="elsewhere").status() == ELSEWHERE
    assert replace(me, machine=other_machine, pid=2**22 + 1).status() == ELSEWHERE
