"""``ChaosMonkey.patch``: faults put on code the test cannot decorate, by dotted path or by
object and attribute name, and the originals put back however the fault ends."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.faults import FaultLog
from pytest_chaos.inject import Call, ChaosConfig, ChaosMonkey, ChaosMonkeyError

from . import targets
from .targets import BackupGateway, Gateway

HERE = "tests.inject.targets"
ON = ChaosConfig(enabled=True, failure_rate=1.0)


@pytest.fixture
def monkey() -> Iterator[ChaosMonkey]:
    """An enabled monkey whose patches are undone even when a test fails half-way, so
    that one broken test does not leave the shared targets module patched."""
    chaos = ChaosMonkey(ON, seed=1)
    yield chaos
    assert chaos.undo() == []


@pytest.fixture(autouse=True)
def targets_untouched() -> Iterator[None]:
    """Each test must leave the targets exactly as it found them."""
    before = {name: inspect.getattr_static(targets, name) for name in vars(targets)}
    classes = {cls: dict(vars(cls)) for cls in (Gateway, BackupGateway)}
    yield
    assert {name: inspect.getattr_static(targets, name) for name in vars(targets)} == before
    assert {cls: dict(vars(cls)) for cls in (Gateway, BackupGateway)} == classes


# -- module functions ------------------------------------------------------------------------


def test_module_function_by_dotted_path(monkey: ChaosMonkey) -> None:
    """The fault reaches code that looks the function up in its module, and on leaving
    the ``with`` the very same function object is back."""
    original = targets.charge
    with monkey.patch(f"{HERE}.charge", error=TimeoutError) as fault:
        assert fault.active
        assert targets.charge is not original
        with pytest.raises(TimeoutError, match="charge"):
            targets.checkout(5)
    assert not fault.active
    assert targets.charge is original
    assert targets.checkout(5) == "receipt: charged 5 EUR"
    (injection,) = monkey.injections
    assert (injection.target, injection.kind, injection.call) == (f"{HERE}.charge", "error", 1)


def test_async_module_function(monkey: ChaosMonkey) -> None:
    original = targets.charge_async
    fault = monkey.patch(f"{HERE}.charge_async", error=ConnectionError, latency_ms=2)
    assert inspect.iscoroutinefunction(targets.charge_async)
    start = time.monotonic()
    with pytest.raises(ConnectionError):
        asyncio.run(targets.charge_async(3))
    assert (time.monotonic() - start) * 1000 >= monkey.injections[0].latency_ms == 2.0
    fault.end()
    assert targets.charge_async is original
    assert asyncio.run(targets.charge_async(3)) == "charged 3 async"


def test_module_function_object_form(monkey: ChaosMonkey) -> None:
    original = targets.charge
    with monkey.patch(targets, "charge", every=2, error=ValueError) as fault:
        assert targets.charge(1) == "charged 1 EUR"
        with pytest.raises(ValueError):
            targets.charge(2)
    assert fault.record.target == f"{HERE}.charge"
    assert targets.charge is original


def test_when_filter_sees_the_original_signature(monkey: ChaosMonkey) -> None:
    def dollars(call: Call) -> bool:
        return bool(call.arguments["currency"] == "USD")

    with monkey.patch(f"{HERE}.charge", error=ValueError, when=dollars):
        assert targets.checkout(1) == "receipt: charged 1 EUR"  # the default applies
        with pytest.raises(ValueError):
            targets.charge(2, "USD")
        with pytest.raises(ValueError):
            targets.charge(3, currency="USD")
    assert [i.call for i in monkey.injections] == [1, 2]


# -- methods ---------------------------------------------------------------------------------


def test_plain_method_by_dotted_path(monkey: ChaosMonkey) -> None:
    original = Gateway.__dict__["charge"]
    with monkey.patch(f"{HERE}.Gateway.charge", error=ValueError, every=2) as fault:
        gateway = Gateway("acme")
        assert gateway.charge(1) == "acme charged 1"
        with pytest.raises(ValueError):
            gateway.charge(2)
        assert BackupGateway("b").charge(3) == "b charged 3"  # inherited: patched too
    assert fault.record.target == f"{HERE}.Gateway.charge"
    assert Gateway.__dict__["charge"] is original


def test_async_method(monkey: ChaosMonkey) -> None:
    original = Gateway.__dict__["refund"]
    with monkey.patch(f"{HERE}.Gateway.refund", error=ValueError, first=1):
        assert inspect.iscoroutinefunction(Gateway.refund)
        with pytest.raises(ValueError):
            asyncio.run(Gateway("x").refund(1))
        assert asyncio.run(Gateway("x").refund(2)) == "x refunded 2"
    assert Gateway.__dict__["refund"] is original


def test_static_method_stays_static(monkey: ChaosMonkey) -> None:
    original = Gateway.__dict__["fee"]
    with monkey.patch(f"{HERE}.Gateway.fee", error=ValueError, every=2):
        assert isinstance(Gateway.__dict__["fee"], staticmethod)
        assert Gateway.fee(500) == 5
        with pytest.raises(ValueError):
            Gateway("x").fee(500)
    assert Gateway.__dict__["fee"] is original
    assert Gateway.fee(700) == 7


def test_class_method_stays_a_class_method(monkey: ChaosMonkey) -> None:
    """The wrapper receives ``cls``, so a filter can tell the subclass's calls apart."""
    original = Gateway.__dict__["create"]
    with monkey.patch(
        f"{HERE}.Gateway.create",
        error=ValueError,
        when=lambda call: call.arguments["cls"] is BackupGateway,
    ):
        assert isinstance(Gateway.__dict__["create"], classmethod)
        made = Gateway.create("plain")
        assert type(made) is Gateway and made.name == "plain"
        with pytest.raises(ValueError):
            BackupGateway.create("backup")
    assert Gateway.__dict__["create"] is original
    assert type(BackupGateway.create("b")) is BackupGateway


def test_class_object_form(monkey: ChaosMonkey) -> None:
    original = Gateway.__dict__["charge"]
    fault = monkey.patch(Gateway, "charge", error=ValueError)
    with pytest.raises(ValueError):
        Gateway().charge(1)
    assert fault.record.target == f"{HERE}.Gateway.charge"
    fault.end()
    assert Gateway.__dict__["charge"] is original


@pytest.mark.parametrize("name", ["charge", "fee", "create", "refund"])
def test_inherited_method_leaves_no_own_attribute(monkey: ChaosMonkey, name: str) -> None:
    """Patching what a subclass inherits puts the fault on the subclass only; undoing it
    removes the subclass's attribute rather than copying the base's into it."""
    base = Gateway.__dict__[name]
    with monkey.patch(f"{HERE}.BackupGateway.{name}", error=ValueError):
        assert name in vars(BackupGateway)
        assert type(vars(BackupGateway)[name]) is type(base)
        assert Gateway.__dict__[name] is base
    assert name not in vars(BackupGateway)
    assert inspect.getattr_static(BackupGateway, name) is base


def test_inherited_method_faults_only_the_subclass(monkey: ChaosMonkey) -> None:
    with monkey.patch(f"{HERE}.BackupGateway.charge", error=ValueError):
        with pytest.raises(ValueError):
            BackupGateway("b").charge(1)
        assert Gateway("g").charge(1) == "g charged 1"
        assert Gateway.charge(BackupGateway("c"), 2) == "c charged 2"  # the base's own


def test_instance_attribute(monkey: ChaosMonkey) -> None:
    """``patch(obj, "method")`` faults one instance; the others and the class are left
    alone, and ending it leaves no attribute on the instance."""
    victim, bystander = Gateway("victim"), Gateway("bystander")
    with monkey.patch(victim, "charge", error=ValueError) as fault:
        assert "charge" in vars(victim)
        with pytest.raises(ValueError):
            victim.charge(1)
        assert bystander.charge(1) == "bystander charged 1"
    assert fault.record.target == f"{HERE}.Gateway.charge"
    assert "charge" not in vars(victim)
    assert victim.charge(2) == "victim charged 2"


def test_instance_async_method(monkey: ChaosMonkey) -> None:
    gateway = Gateway("g")
    with monkey.patch(gateway, "refund", error=ValueError):
        assert inspect.iscoroutinefunction(gateway.refund)
        with pytest.raises(ValueError):
            asyncio.run(gateway.refund(1))
    assert asyncio.run(gateway.refund(1)) == "g refunded 1"
    assert "refund" not in vars(gateway)


def test_instance_attribute_that_is_its_own(monkey: ChaosMonkey) -> None:
    """A callable stored on the instance itself comes back as that very object."""
    gateway = Gateway("g")

    def notify(message: str) -> str:
        return f"sent {message}"

    gateway.notify = notify  # type: ignore[attr-defined]
    with monkey.patch(gateway, "notify", error=ValueError), pytest.raises(ValueError):
        gateway.notify("hi")  # type: ignore[attr-defined]
    assert vars(gateway)["notify"] is notify


# -- ending ----------------------------------------------------------------------------------


def test_restored_after_end_and_ending_twice_is_harmless(monkey: ChaosMonkey) -> None:
    original = targets.charge
    fault = monkey.patch(f"{HERE}.charge", error=ValueError)
    fault.end()
    fault.end()
    assert targets.charge is original
    assert fault.record.rolled_back_at is not None
    assert monkey.undo() == []
    assert targets.charge is original


def test_restored_by_monkey_undo() -> None:
    """``undo`` puts back every patch, newest first, and disarms every fault; ending a
    fault afterwards changes nothing."""
    monkey = ChaosMonkey(ON, seed=1)
    charge, fee, refund = targets.charge, Gateway.__dict__["fee"], Gateway.__dict__["refund"]
    first = monkey.patch(f"{HERE}.charge", error=ValueError)
    monkey.patch(f"{HERE}.Gateway.fee", latency_ms=1)
    monkey.patch(Gateway, "refund", error=ValueError)
    monkey.patch(f"{HERE}.BackupGateway.create", error=ValueError)
    assert monkey.undo() == []
    assert targets.charge is charge
    assert Gateway.__dict__["fee"] is fee and Gateway.__dict__["refund"] is refund
    assert "create" not in vars(BackupGateway)
    assert all(r.rolled_back_at is not None for r in monkey.log.faults)
    assert [r.kind for r in monkey.log.faults] == ["monkey"] * 4
    first.end()
    assert targets.charge is charge
    assert targets.checkout(1) == "receipt: charged 1 EUR"
    assert monkey.injections == []


def test_restored_after_an_exception_escapes_the_with(monkey: ChaosMonkey) -> None:
    original, static = targets.charge, Gateway.__dict__["fee"]
    with (
        pytest.raises(ChaosMonkeyError),
        monkey.patch(f"{HERE}.charge", error=ChaosMonkeyError("down")),
        monkey.patch(f"{HERE}.Gateway.fee", error=ValueError),
    ):
        targets.checkout(1)
    assert targets.charge is original
    assert Gateway.__dict__["fee"] is static
    assert all(r.rolled_back_at is not None for r in monkey.log.faults)


def test_two_patches_on_one_target(monkey: ChaosMonkey) -> None:
    """The second fault on a target is ``target#2`` with a stream of its own; ended in
    reverse order, the original comes back."""
    original = targets.charge
    outer = monkey.patch(f"{HERE}.charge", rate=0.5, latency_ms=0)
    inner = monkey.patch(f"{HERE}.charge", rate=0.5, latency_ms=0)
    for n in range(100):
        targets.charge(n)
    faults = {i.fault for i in monkey.injections}
    assert faults == {f"{HERE}.charge", f"{HERE}.charge#2"}
    first = [i.call for i in monkey.injections if i.fault == f"{HERE}.charge"]
    second = [i.call for i in monkey.injections if i.fault == f"{HERE}.charge#2"]
    assert first != second

    alone = ChaosMonkey(ON, seed=1)
    with alone.patch(f"{HERE}.charge", rate=0.5, latency_ms=0):
        for n in range(100):
            targets.charge(n)
    assert [i.call for i in alone.injections] == first

    inner.end()
    outer.end()
    assert targets.charge is original


def test_patches_ended_out_of_order_leave_the_original(monkey: ChaosMonkey) -> None:
    """The older of two patches ended first stops striking at once, the newer one keeps
    striking, and when both have ended the original is back."""
    original = targets.charge
    older = monkey.patch(f"{HERE}.charge", error=KeyError)
    newer = monkey.patch(f"{HERE}.charge", latency_ms=0)
    older.end()
    # the older fault no longer raises
    assert targets.charge("x") == original("x")  # type: ignore[arg-type]  # a wrong type on purpose
    assert [i.fault for i in monkey.injections] == [f"{HERE}.charge#2"]  # the newer struck
    assert targets.charge is not original
    newer.end()
    assert targets.charge is original


def test_a_fault_on_time_sleep_does_not_recurse(monkey: ChaosMonkey) -> None:
    """The faults sleep with the function they were imported with, so a test may delay
    ``time.sleep`` itself."""
    with monkey.patch("time.sleep", latency_ms=1):
        time.sleep(0)
        time.sleep(0)
    assert [i.call for i in monkey.injections] == [1, 2]


def test_an_instance_without_the_attribute_is_a_value_error(monkey: ChaosMonkey) -> None:
    with pytest.raises(ValueError, match="no attribute"):
        monkey.patch(targets.Gateway(), "refund_everything", error=KeyError)


def test_disabled_monkey_patch_passes_calls_through() -> None:
    monkey = ChaosMonkey(seed=1)
    with monkey.patch(f"{HERE}.charge", error=ValueError, rate=1.0):
        assert targets.checkout(1) == "receipt: charged 1 EUR"
        with monkey.active(), pytest.raises(ValueError):
            targets.checkout(2)
    assert len(monkey.injections) == 1


def test_unaffected_service_is_left_alone() -> None:
    picky = ChaosMonkey(
        ChaosConfig(enabled=True, failure_rate=1.0, affected_services=["payments"]), seed=1
    )
    with picky.patch(f"{HERE}.charge", service="inventory", error=ValueError):
        assert targets.charge(1) == "charged 1 EUR"
    with (
        picky.patch(f"{HERE}.charge", service="payments", error=ValueError),
        pytest.raises(ValueError),
    ):
        targets.charge(1)


def test_dry_run_patch_records_and_is_undone() -> None:
    monkey = ChaosMonkey(ON, seed=1, log=FaultLog(dry_run=True))
    original = targets.charge
    monkey.patch(f"{HERE}.charge", error=ValueError, latency_ms=3_600_000)
    assert targets.checkout(1) == "receipt: charged 1 EUR"  # an hour's delay would hang
    assert [(i.kind, i.dry_run) for i in monkey.injections] == [("error", True)]
    (record,) = monkey.log.faults
    assert record.dry_run and record.target == f"{HERE}.charge"
    assert monkey.undo() == []
    assert targets.charge is original
    assert record.rolled_back_at is not None


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_zq.charge", "no module 'no_such_module_zq'"),
        (f"{HERE}.nope", f"module '{HERE}' has no attribute 'nope'"),
        (f"{HERE}.Gateway.nope", f"type '{HERE}.Gateway' has no attribute 'nope'"),
        (f"{HERE}.Nope.charge", f"module '{HERE}' has no attribute 'Nope'"),
        (f"{HERE}.Gateway.Inner.x", f"type '{HERE}.Gateway' has no attribute 'Inner'"),
        ("charge", "dotted path"),
        ("tests..targets.charge", "dotted path"),
        ("tests.inject.targets.charge()", "dotted path"),
    ],
)
def test_bad_dotted_path_is_a_value_error_naming_it(
    monkey: ChaosMonkey, path: str, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        monkey.patch(path, error=ValueError)
    assert repr(path) in str(caught.value)
    assert message in str(caught.value)
    assert monkey.log.faults == []


@pytest.fixture
def broken_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package that exists on sys.path but cannot be imported: its module imports a
    dependency that is not installed."""
    package = tmp_path / "chaos_broken_shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "payments.py").write_text(
        "import chaos_absent_dependency\n\ndef charge(amount):\n    return amount\n"
    )
    (package / "orders.py").write_text("def place(n):\n    return n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("chaos_broken_shop", "chaos_broken_shop.payments", "chaos_broken_shop.orders"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return "chaos_broken_shop"


def test_module_whose_own_import_fails_raises_the_real_error(
    monkey: ChaosMonkey, broken_package: str
) -> None:
    """The missing dependency is reported as it is, not as "no module" for the path."""
    with pytest.raises(ModuleNotFoundError) as caught:
        monkey.patch(f"{broken_package}.payments.charge", error=ValueError)
    assert caught.value.name == "chaos_absent_dependency"
    assert monkey.log.faults == []


def test_module_of_a_package_on_a_temporary_path(monkey: ChaosMonkey, broken_package: str) -> None:
    """The importable module next to the broken one can be patched (the fixture's
    package is real), and a missing name in it is a ValueError."""
    with monkey.patch(f"{broken_package}.orders.place", error=ValueError):
        orders: Any = sys.modules[f"{broken_package}.orders"]
        with pytest.raises(ValueError):
            orders.place(1)
    assert orders.place(1) == 1
    with pytest.raises(ValueError, match="no attribute 'missing'"):
        monkey.patch(f"{broken_package}.orders.missing")
    with pytest.raises(ValueError, match="has no attribute 'absent'"):
        monkey.patch(f"{broken_package}.absent.charge")


def test_non_callable_is_a_type_error(monkey: ChaosMonkey) -> None:
    with pytest.raises(TypeError, match="CURRENCY") as caught:
        monkey.patch(f"{HERE}.CURRENCY", error=ValueError)
    assert "not callable" in str(caught.value)
    assert targets.CURRENCY == "EUR"
    with pytest.raises(TypeError, match="not callable"):
        monkey.patch(Gateway("g"), "name", error=ValueError)


def test_async_generator_function_is_refused(monkey: ChaosMonkey) -> None:
    original = targets.ticker
    with pytest.raises(TypeError, match="async generator function"):
        monkey.patch(f"{HERE}.ticker", error=ValueError)
    assert targets.ticker is original


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"rate": 2}, "rate=2"),
        ({"every": 0}, "every=0"),
        ({"latency_ms": (5, 1)}, "latency_ms=(5, 1)"),
    ],
)
def test_bad_values_leave_the_target_alone(
    monkey: ChaosMonkey, options: dict[str, Any], named: str
) -> None:
    original = targets.charge
    with pytest.raises(ValueError) as caught:
        monkey.patch(f"{HERE}.charge", **options)
    assert named in str(caught.value)
    assert targets.charge is original
    assert monkey.log.faults == []


def test_bad_error_value_leaves_the_target_alone(monkey: ChaosMonkey) -> None:
    original = targets.charge
    with pytest.raises(TypeError, match="error="):
        monkey.patch(f"{HERE}.charge", error="boom")  # type: ignore[arg-type]  # a wrong type on purpose
    assert targets.charge is original


def test_unknown_keyword_and_missing_attribute_name(monkey: ChaosMonkey) -> None:
    with pytest.raises(TypeError, match="'ratee'"):
        monkey.patch(f"{HERE}.charge", ratee=0.5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="dotted path"):
        monkey.patch(targets.charge)
    assert monkey.log.faults == []
