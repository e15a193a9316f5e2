"""Call sites: functions a test registers with the exceptions they may raise, so the
explorer counts their calls and makes every call raise one of them in a run.

They are patched by a Chaos Monkey of the explorer's own, seeded by the test, so that
what it injects never shows in the test's ``chaos_monkey``; registering counts calls
without striking (a ``when`` filter that counts and says no), and a run that faults a call site layers a second patch
that strikes every call during the test's body.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import final

from pytest_chaos.core.faultlog import ActiveFault, FaultLog
from pytest_chaos.explore.cells import Dependency, FaultRef
from pytest_chaos.explore.recording import Usage
from pytest_chaos.inject.monkey import Call, ChaosConfig, ChaosMonkey


@final
@dataclass
class CallSite:
    """A registered function: its dotted path, its exceptions by label, its calls so far
    and when the test's body started."""

    target: str
    errors: dict[str, BaseException | type[BaseException]]
    calls: int = 0
    before: int = 0

    def count(self, call: Call) -> bool:
        """The counting patch's filter: counts the call, never strikes it."""
        self.calls += 1
        return False


@final
class CallSites:
    """The call sites of one run."""

    def __init__(self, seed: int) -> None:
        self.monkey = ChaosMonkey(
            ChaosConfig(enabled=True, failure_rate=1.0), seed=seed, log=FaultLog()
        )
        self._sites: dict[str, CallSite] = {}
        self._faults: list[ActiveFault] = []

    def register(
        self, target: str, errors: Iterable[BaseException | type[BaseException]]
    ) -> CallSite:
        """Count the calls of ``target`` (a dotted path, as for ``chaos_monkey.patch``);
        ``errors`` (instances or classes) are what a run may make it raise."""
        if not isinstance(target, str):
            raise TypeError(f"call_site({target!r}): give the function's dotted path")
        if target in self._sites:
            raise ValueError(f"call site {target!r} is registered twice")
        labelled = labels(errors, target)
        site = CallSite(target, labelled)
        self.monkey.patch(target, error=next(iter(labelled.values())), when=site.count)
        self._sites[target] = site
        return site

    def get(self, target: str) -> CallSite | None:
        return self._sites.get(target)

    def start(self) -> None:
        for site in self._sites.values():
            site.before = site.calls

    def usages(self) -> list[Usage]:
        return [
            Usage(
                Dependency("call", site.target),
                uses=site.calls - site.before,
                errors=tuple(site.errors),
            )
            for site in self._sites.values()
        ]

    def apply(self, fault: FaultRef) -> None:
        """Make every call of the call site raise the exception labelled ``fault.fault``."""
        site = self._sites[fault.dependency.name]
        error = site.errors.get(fault.fault)
        if error is None:
            raise ValueError(
                f"call site {site.target!r} has no exception {fault.fault!r}; registered: "
                f"{', '.join(site.errors)}"
            )
        self._faults.append(self.monkey.patch(site.target, error=error, rate=1.0))

    def end_faults(self) -> None:
        while self._faults:
            self._faults.pop().end()

    def undo(self) -> None:
        self.end_faults()
        self.monkey.undo()


def labels(
    errors: Iterable[BaseException | type[BaseException]], target: str
) -> dict[str, BaseException | type[BaseException]]:
    """Each exception by its class's name (``OperationalError``, then ``OperationalError#2``
    for a second one of that class)."""
    found: dict[str, BaseException | type[BaseException]] = {}
    for error in errors:
        kind = error if isinstance(error, type) else type(error)
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise TypeError(
                f"call_site({target!r}): {error!r} is not an exception or exception class"
            )
        label, number = kind.__name__, 2
        while label in found:
            label, number = f"{kind.__name__}#{number}", number + 1
        found[label] = error
    if not found:
        raise ValueError(f"call_site({target!r}) needs at least one exception to raise")
    return found
