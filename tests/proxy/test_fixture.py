"""The ``toxiproxy`` fixture on every backend: one suite, written as a user would write it
(``fixture_suite/chaos_fixture_suite.py``), run through pytester on the embedded engine and
on the real ``toxiproxy-server`` started by the plugin's binary backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..servers import isolate_chaos_env, require_real_server
from .helpers import assert_fixture_suite_passed

SUITE = Path(__file__).parent / "fixture_suite" / "chaos_fixture_suite.py"


@pytest.fixture
def inner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_chaos_env(monkeypatch)


@pytest.fixture(params=["embedded", pytest.param("binary", marks=pytest.mark.realserver)])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``--chaos-toxiproxy`` value. For ``binary``, the server is looked up here, before
    pytester points $HOME at its temporary directory, and handed over as $TOXIPROXY_SERVER:
    the inner run then finds it the way the plugin does by default."""
    if request.param == "binary":
        monkeypatch.setenv("TOXIPROXY_SERVER", require_real_server())
    return str(request.param)


@pytest.mark.usefixtures("inner_env")
def test_fixture_suite(backend: str, pytester: pytest.Pytester) -> None:
    shutil.copy(SUITE, pytester.path / "test_fixture_suite.py")
    result = pytester.runpytest_subprocess(
        "--chaos-toxiproxy", backend, "-p", "no:cacheprovider", "-p", "no:randomly", "-v"
    )
    assert_fixture_suite_passed(result, backend)
