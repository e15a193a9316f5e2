"""Every journal validates with chaostoolkit-lib, whatever the probe, the tolerance, the
fault or the rollback is: functions Chaos Toolkit can import are named as they are, the
others (lambdas, closures, partials, methods, callable objects) by a stand-in that says why
``chaos run`` cannot call them."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos import faults, probes
from pytest_chaos.core.activity import provider_of, unimportable
from pytest_chaos.experiment import Experiment, ExperimentError, ExperimentRun
from pytest_chaos.faults.described import Unresolved
from pytest_chaos.steady.load import Load
from pytest_chaos.steady.tolerance import between, jsonpath, regex, satisfies

from . import shop

VALIDATE = Path(__file__).with_name("validate.py")


def healthy() -> bool:
    """A module-level function: Chaos Toolkit can import it."""
    return True


def small(value: Any = None) -> bool:
    """A tolerance function Chaos Toolkit can call with ``value=``."""
    return value is not None and value < 10


def depth(queue: str = "orders") -> int:
    return 3


class Checker:
    def ok(self) -> bool:
        return True

    def __call__(self) -> bool:
        return True


def validate(tmp_path: Path, journals: list[dict[str, Any]]) -> list[str]:
    paths = []
    for index, journal in enumerate(journals):
        path = tmp_path / f"journal-{index}.json"
        path.write_text(json.dumps(journal))
        paths.append(str(path))
    checked = subprocess.run(
        [sys.executable, str(VALIDATE), *paths], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stderr
    return checked.stdout.splitlines()


@pytest.fixture
def health_url() -> Iterator[str]:
    with shop.running() as running:
        yield running.url + "/health"


def every_kind_of_probe(url: str) -> list[probes.Probe]:
    def closure() -> bool:
        return True

    address = url.split("/")[2]
    return [
        probes.call(lambda: True, name="lambda"),
        probes.call(closure, name="closure"),
        probes.call(functools.partial(depth, "payments"), tolerance=[0, 10], name="partial"),
        probes.call(Checker(), name="callable object"),
        probes.call(Checker().ok, name="method"),
        probes.call(healthy, name="module function"),
        probes.call(depth, tolerance=between(0, 5), name="function with defaults"),
        probes.call(depth, tolerance=satisfies(lambda v: v < 10), name="lambda tolerance"),
        probes.call(depth, tolerance=satisfies(small), name="function tolerance"),
        probes.call(depth, tolerance=small, name="bare function tolerance"),
        probes.http(url, body=jsonpath("$.status", expect="up"), name="http jsonpath"),
        probes.http(url, body=regex("up"), status=[200, 204], name="http regex"),
        probes.http(url, body=lambda text: "up" in text, name="http predicate"),
        probes.tcp(address=address, name="tcp"),
        probes.slo(error_rate_max=0.5, name="slo"),
    ]


def test_journals_with_every_kind_of_probe_rollback_and_action_validate(
    tmp_path: Path, health_url: str
) -> None:
    rolled = []
    experiment = Experiment.build(
        "every kind of callable",
        steady_state=every_kind_of_probe(health_url),
        method=[
            faults.action("lambda", apply=lambda: None, for_s=0.05),
            faults.action("function", apply=healthy, undo=healthy, for_s=0.05),
        ],
        load=Load.call(healthy, rps=50, duration_s=10),
        rollbacks=[lambda: rolled.append(1), healthy, functools.partial(depth, "x")],
        strategy="continuously",
        frequency_s=0.05,
        settle_s=0.1,
        tags=["ctk"],
    )
    journal = ExperimentRun(experiment, resolver=Unresolved()).run()
    assert rolled == [1]
    assert journal["status"] == "completed", journal["pytest_chaos"]["deviations"]
    assert validate(tmp_path, [journal]) == ["ok"]
    named = {
        probe["name"]: probe["provider"]
        for probe in journal["experiment"]["steady-state-hypothesis"]["probes"]
    }
    assert named["module function"]["func"] == "healthy"  # chaos run could call it
    assert named["lambda"]["func"] == unimportable.__name__
    assert named["lambda"]["arguments"] == {
        "callable": f"{__name__}.every_kind_of_probe.<locals>.<lambda>"
    }


def test_journals_of_every_fault_kind_validate(tmp_path: Path) -> None:
    """Faults that name what they break, under a resolver that cannot find it: each fails
    to apply, and the journal of that failure validates all the same."""
    method = [
        faults.latency("db", ms=100, jitter=10, for_s=0.05),
        faults.bandwidth("db", kb_per_s=10, for_s=0.05),
        faults.timeout("db", ms=0, for_s=0.05),
        faults.reset_peer("db", for_s=0.05),
        faults.toxic("db", "slicer", average_size=10, size_variation=2, delay=0, for_s=0.05),
        faults.down("db", for_s=0.05),
        faults.kill("worker", for_s=0.05),
        faults.stop("worker", timeout_s=1, for_s=0.05),
        faults.pause("worker", for_s=0.05),
        faults.patch("json.dumps", error=ValueError, rate=0.5, for_s=0.05),
        faults.http("status", 503, path="/pay", for_s=0.05),
        faults.http("latency", 200, host="api", for_s=0.05),
    ]
    with pytest.raises(ExperimentError) as raised:
        ExperimentRun(Experiment.build("every fault", method=method), resolver=Unresolved()).run()
    journal = raised.value.journal
    assert len(journal["run"]) == len(method)
    assert validate(tmp_path, [journal]) == ["ok"]


def test_a_function_chaos_toolkit_cannot_import_is_named_by_the_stand_in() -> None:
    """The stand-in says why when ``chaos run`` calls it; a function whose signature does
    not bind the arguments Chaos Toolkit would pass is named by it too."""

    def needs_service(service: object) -> bool:
        return True

    assert provider_of(healthy)["func"] == "healthy"
    assert provider_of(small, called_with=("value",))["func"] == "small"
    assert provider_of(healthy, called_with=("value",))["func"] == unimportable.__name__
    assert provider_of(needs_service)["func"] == unimportable.__name__
    with pytest.raises(RuntimeError, match="a function Chaos Toolkit cannot import"):
        unimportable(callable="tests.x.<lambda>")
