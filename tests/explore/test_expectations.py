"""Declared expectations: the marker's ``explore`` argument, read at collection, and
whether a run did what was declared."""

from __future__ import annotations

import httpx
import pytest

from pytest_chaos.explore import expect
from pytest_chaos.explore.cells import Dependency, FaultRef
from pytest_chaos.explore.expectations import parse


def no_fixture(name: str) -> object:
    raise LookupError(f"no fixture {name!r}")


def test_a_declaration_matches_its_fault_then_any_fault() -> None:
    down = expect(503, reason="checkout answers 503")
    anything = expect()
    declaration = parse({"payments": {"down": down, "*": anything}, "redis": anything})
    payments_down = FaultRef(Dependency("link", "payments"), "down")
    payments_reset = FaultRef(Dependency("process", "payments"), "kill")
    redis = FaultRef(Dependency("http", "redis"), "503")
    assert declaration.matching([payments_down]) == [(payments_down, down)]
    assert declaration.matching([payments_reset, redis]) == [
        (payments_reset, anything),
        (redis, anything),
    ]
    assert declaration.enabled is None


def test_what_the_run_did_is_checked() -> None:
    charges = {"count": 0}

    def charged_nothing(payments: dict[str, int]) -> bool:
        return payments["count"] == 0

    declared = expect([502, 503], raises=AssertionError, check=charged_nothing)
    fixtures = {"payments": charges}.__getitem__
    assert declared.unmet(503, AssertionError("503 != 201"), fixtures) is None
    assert declared.unmet(500, AssertionError(), fixtures) == "expected status 502 or 503, got 500"
    assert declared.unmet(503, httpx.ReadTimeout("t"), fixtures) == (
        "expected AssertionError, got ReadTimeout"
    )
    charges["count"] = 1
    assert declared.unmet(503, AssertionError(), fixtures) == "charged_nothing() returned False"
    assert "no fixture 'payments'" in str(declared.unmet(503, AssertionError(), no_fixture))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "use True, False, or a dict"),
        ({"payments": 3}, "use expect"),
        ({"payments": {"dwon": expect()}}, "no fault 'dwon'"),
        ({"payments": {"down": 503}}, "use pytest_chaos.explore.expect"),
        ({"": expect()}, "is not a dependency name"),
    ],
)
def test_bad_declarations_say_what_is_allowed(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": 42}, "HTTP statuses"),
        ({"status": True}, "HTTP statuses"),
        ({"raises": "Error"}, "exception classes"),
        ({"check": 3}, "function of the test's fixtures"),
        ({"reason": " "}, "non-empty string"),
    ],
)
def test_bad_expectations_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        expect(**kwargs)  # type: ignore[arg-type]
