"""Declared expectations: what a fault may legitimately do to a test.

``@pytest.mark.chaos(explore={"payments": {"down": expect(status=503, check=...)}})``
says: when payments is down, the system may answer 503 (and ``check`` must hold); a run
under that fault whose test fails then ends as *expected*, not *broke*, if the declared
behaviour happened. The marker's ``explore`` argument is read here, once, at collection.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, final

from pytest_chaos.explore.catalogue import CATALOGUE
from pytest_chaos.explore.cells import FaultRef

ANY_FAULT = "*"
_CATALOGUE_IDS = frozenset(kind.id for kind in CATALOGUE)


@final
@dataclass(frozen=True)
class Expectation:
    """What a fault may do: the test's last answer from the system had a status of
    ``status``; it failed with one of ``raises``; ``check`` (called with the test's
    fixtures, by parameter name) returned something true. With none given, any failure is
    legitimate (the dependency is essential). ``reason`` says it in words."""

    status: frozenset[int] = frozenset()
    raises: tuple[type[BaseException], ...] = ()
    check: Callable[..., Any] | None = field(default=None, compare=False)
    reason: str | None = None

    def describe(self) -> str:
        if self.reason:
            return self.reason
        parts = []
        if self.status:
            parts.append("answers " + " or ".join(map(str, sorted(self.status))))
        if self.raises:
            parts.append("raises " + " or ".join(kind.__name__ for kind in self.raises))
        if self.check is not None:
            parts.append(f"{getattr(self.check, '__name__', 'check')}() holds")
        return ", ".join(parts) or "may fail"

    def unmet(
        self,
        last_status: int | None,
        error: BaseException | None,
        fixtures: Callable[[str], Any],
    ) -> str | None:
        """Why this expectation does not hold for a run that ended with ``error`` (None:
        it passed) after last seeing ``last_status``; None when it holds. ``fixtures``
        fetches a fixture by name for ``check`` (LookupError naming it if there is none)."""
        if self.status and last_status not in self.status:
            seen = "no answer" if last_status is None else f"{last_status}"
            return f"expected status {' or '.join(map(str, sorted(self.status)))}, got {seen}"
        if self.raises and not isinstance(error, self.raises):
            got = "no error" if error is None else type(error).__name__
            return f"expected {' or '.join(k.__name__ for k in self.raises)}, got {got}"
        if self.check is not None:
            names = list(inspect.signature(self.check).parameters)
            try:
                arguments = [fixtures(name) for name in names]
            except LookupError as missing:
                return str(missing.args[0] if missing.args else missing)
            try:
                held = self.check(*arguments)
            except AssertionError as failed:
                return f"{self.describe()}: {failed or 'assertion failed'}"
            except Exception as error:  # the check could not tell: it does not hold
                name = getattr(self.check, "__name__", "check")
                return f"{name}() raised {type(error).__name__}: {error}"
            if not held:
                return f"{getattr(self.check, '__name__', 'check')}() returned {held!r}"
        return None


def expect(
    status: int | Iterable[int] | None = None,
    *,
    raises: type[BaseException] | Iterable[type[BaseException]] | None = None,
    check: Callable[..., Any] | None = None,
    reason: str | None = None,
) -> Expectation:
    """Declare what a fault may do: ``status`` (one or several HTTP statuses: the test's
    last answer from the system), ``raises`` (the exception types the test may fail with),
    ``check`` (a function of the test's fixtures, by parameter name, that must return
    something true), ``reason`` (the words for reports)."""
    statuses = _statuses(status)
    kinds = _exception_types(raises)
    if check is not None and not callable(check):
        raise TypeError(f"expect(check={check!r}): use a function of the test's fixtures")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise TypeError(f"expect(reason={reason!r}): use a non-empty string")
    return Expectation(statuses, kinds, check, reason)


def _statuses(status: object) -> frozenset[int]:
    if status is None:
        return frozenset()
    values = [status] if isinstance(status, int) else status
    if not isinstance(values, Iterable) or isinstance(values, str):
        values = [values]
    found = list(values)
    if not found or not all(
        isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in found
    ):
        raise TypeError(f"expect(status={status!r}): use HTTP statuses from 100 to 599")
    return frozenset(found)


def _exception_types(raises: object) -> tuple[type[BaseException], ...]:
    if raises is None:
        return ()
    values = [raises] if isinstance(raises, type) else raises
    found = list(values) if isinstance(values, Iterable) else [values]
    kinds = [v for v in found if isinstance(v, type) and issubclass(v, BaseException)]
    if not found or len(kinds) != len(found):
        raise TypeError(f"expect(raises={raises!r}): use exception classes")
    return tuple(kinds)


@final
@dataclass(frozen=True)
class Declaration:
    """A test's ``explore`` marker argument: whether it is explored (``enabled``: True
    explores it on every run, False never, None when ``--chaos-explore`` says so), and
    its expectations by dependency name (an HTTP endpoint also answers to its host's)
    and fault (``*``: any fault)."""

    enabled: bool | None = None
    expectations: Mapping[tuple[str, str], Expectation] = field(default_factory=dict)

    def matching(self, faults: Iterable[FaultRef]) -> list[tuple[FaultRef, Expectation]]:
        """The expectations that apply to a run with ``faults``, with the fault each
        answers for: the fault's own entry first, then its dependency's ``*``."""
        found = []
        for fault in faults:
            for key in self._keys(fault):
                if key in self.expectations:
                    found.append((fault, self.expectations[key]))
                    break
        return found

    @staticmethod
    def _keys(fault: FaultRef) -> list[tuple[str, str]]:
        """The entries that may answer for ``fault``, most specific first: its
        dependency's name, then (an HTTP endpoint) its host's; each fault, then ``*``."""
        names = [fault.dependency.name]
        if fault.dependency.host is not None:
            names.append(fault.dependency.host)
        return [(name, key) for key in (fault.fault, ANY_FAULT) for name in names]


def parse(value: object) -> Declaration:
    """The declaration of ``explore=value``; ValueError naming what is wrong."""
    if value is None:
        return Declaration()
    if isinstance(value, bool):
        return Declaration(enabled=value)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"explore={value!r}: use True, False, or a dict of dependency name -> "
            "{fault: expect(...)}"
        )
    expectations: dict[tuple[str, str], Expectation] = {}
    for name, faults in value.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"explore: {name!r} is not a dependency name")
        if isinstance(faults, Expectation):
            faults = {ANY_FAULT: faults}
        if not isinstance(faults, Mapping) or not faults:
            raise ValueError(
                f"explore[{name!r}]={faults!r}: use expect(...) or a dict of fault -> expect(...)"
            )
        for fault, expectation in faults.items():
            _check_fault(name, fault)
            if not isinstance(expectation, Expectation):
                raise ValueError(
                    f"explore[{name!r}][{fault!r}]={expectation!r}: use "
                    "pytest_chaos.explore.expect(...)"
                )
            expectations[(name, fault)] = expectation
    return Declaration(expectations=expectations)


def _check_fault(name: str, fault: object) -> None:
    """A fault key: ``*``, a catalogue fault, or a call site's exception (by class name)."""
    if not isinstance(fault, str) or not fault:
        raise ValueError(f"explore[{name!r}]: fault {fault!r} is not a name")
    if fault == ANY_FAULT or fault in _CATALOGUE_IDS or fault[0].isupper():
        return
    raise ValueError(
        f"explore[{name!r}]: no fault {fault!r}; use '*', one of "
        f"{', '.join(sorted(_CATALOGUE_IDS))}, or a call site's exception class name"
    )
