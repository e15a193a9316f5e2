"""The Chaos Monkey: exceptions and latency injected into chosen functions, by decorator or by
patching a dotted path, each decision drawn from a seeded stream so a run replays exactly.

It works without pytest (a service can ship it behind a setting): ``enabled`` is one switch
for every fault it made, and a disabled monkey costs its wrapped functions one attribute
check per call.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import time as wall_clock
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, final

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.core.faultlog import ActiveFault, FaultLog, FaultRecord
from pytest_chaos.core.seeding import fresh_seed
from pytest_chaos.inject import patching
from pytest_chaos.inject.draws import CallDraws
from pytest_chaos.inject.rules import Injection, Rule, Strike, check_keywords
from pytest_chaos.inject.trigger import Trigger, check_rate, latency_range

if TYPE_CHECKING:
    from typing_extensions import Unpack

_Func = TypeVar("_Func", bound=Callable[..., Any])

#: An exception to raise: an instance, a class (instantiated with a message), or a
#: function of no arguments that returns one.
ErrorSpec = BaseException | type[BaseException] | Callable[[], BaseException]
InjectionListener = Callable[[Injection], None]


class FaultOptions(TypedDict, total=False):
    """What a function fault does and which calls it strikes (see :meth:`ChaosMonkey.chaos`)."""

    error: ErrorSpec | None
    latency_ms: float | tuple[float, float] | None
    rate: float | None
    every: int | None
    first: int | None
    for_s: float | None
    when: Callable[[Call], bool] | None


class ChaosMonkeyError(ChaosError):
    """The exception a fault raises when none was chosen."""


@final
@dataclass(frozen=True)
class ChaosConfig:
    """The monkey's settings: whether the monkey is on, the chance that a call is
    hit, the latency range for faults that give none, and the only services it touches
    (None: all). Faults may override the rate and the latency one by one."""

    enabled: bool = False
    failure_rate: float = 0.1
    latency_min_ms: float = 100
    latency_max_ms: float = 5000
    affected_services: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"enabled={self.enabled!r}: use True or False")
        check_rate(self.failure_rate, "failure_rate")
        latency_range((self.latency_min_ms, self.latency_max_ms), "latency_min_ms/latency_max_ms")
        services = self.affected_services
        if services is not None:
            if isinstance(services, str) or not all(isinstance(s, str) for s in services):
                raise ValueError(
                    f"affected_services={services!r}: use a list of service names, or None"
                )
            object.__setattr__(self, "affected_services", tuple(services))

    def affects(self, service: str | None) -> bool:
        """Whether a fault on ``service`` may strike (faults with no service always may)."""
        return (
            service is None or self.affected_services is None or (service in self.affected_services)
        )


@final
class Call:
    """A call a fault is about to consider, given to its ``when`` filter: ``args`` and
    ``kwargs`` as passed, ``arguments`` bound to the parameter names with defaults."""

    __slots__ = ("_signature", "args", "kwargs", "target")

    def __init__(
        self,
        target: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        signature: inspect.Signature | None,
    ) -> None:
        self.target = target
        self.args = args
        self.kwargs = kwargs
        self._signature = signature

    @property
    def arguments(self) -> dict[str, Any]:
        if self._signature is None:
            return dict(self.kwargs)
        bound = self._signature.bind(*self.args, **self.kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def __repr__(self) -> str:
        return f"<Call {self.target} args={self.args!r} kwargs={self.kwargs!r}>"


@final
class FunctionFault(Rule):
    """A fault on one function: an exception, a delay, both, or (when neither is given)
    one of the two chosen per struck call."""

    def __init__(
        self,
        monkey: ChaosMonkey,
        target: str,
        *,
        service: str | None,
        error: ErrorSpec | None,
        latency_ms: float | tuple[float, float] | None,
        trigger: Trigger,
        when: Callable[[Call], bool] | None,
        signature: inspect.Signature | None,
    ) -> None:
        either = error is None and latency_ms is None
        latency = latency_range(latency_ms) or (
            (monkey.config.latency_min_ms, monkey.config.latency_max_ms) if either else None
        )
        make_error = _error_factory(error, target, service)
        name = monkey.fault_name(target)  # only once the fault is known to be valid
        super().__init__(name, trigger, monkey.seed)
        self.monkey = monkey
        self.target = target
        self.service = service
        self.either = either
        self.latency = latency
        self.fails = error is not None or either
        self._make_error = make_error
        self.when = when
        self.signature = signature
        self.armed = monkey.config.affects(service)

    def details(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"service": self.service, **self.trigger.describe()}
        if self.fails:
            shown["error"] = "one of error, latency" if self.either else "error"
        if self.latency is not None:
            shown["latency_ms"] = list(self.latency)
        return shown

    def strike(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Strike | None:
        """Decide for one call; record what was injected; return what to do, or None."""
        if self.when is not None and not self.when(Call(self.target, args, kwargs, self.signature)):
            return None
        drawn = self.draw(self._choose)
        if drawn is None:
            return None
        call, (delay_ms, fail) = drawn
        error = self._make_error(call) if fail else None
        self.monkey.record(
            Injection(
                kind="error" if fail else "latency",
                target=self.target,
                fault=self.name,
                call=call,
                at=wall_clock(),
                latency_ms=delay_ms,
                details={"raised": repr(error)} if error is not None else {},
                dry_run=self.monkey.dry_run,
            )
        )
        if self.monkey.dry_run:
            return None
        return Strike(delay_ms / 1000, error)

    def _choose(self, draws: CallDraws) -> tuple[float, bool]:
        fail = draws.random() < 0.5 if self.either else self.fails
        delay_ms = 0.0
        if self.latency is not None and not (self.either and fail):
            low, high = self.latency
            delay_ms = low if low == high else draws.uniform(low, high)
        return delay_ms, fail


def _error_factory(
    error: ErrorSpec | None, target: str, service: str | None
) -> Callable[[int], BaseException]:
    """A function making the exception for the nth struck call; checks ``error`` now."""
    if error is None:
        victim = service or target
        return lambda call: ChaosMonkeyError(
            f"Chaos Monkey killed {victim}! (call {call} of {target})"
        )
    if isinstance(error, BaseException):
        return lambda call: error.with_traceback(None)
    if isinstance(error, type) and issubclass(error, BaseException):
        return lambda call: _instantiate(error, f"chaos monkey: call {call} of {target} failed")
    if callable(error) and not isinstance(error, type):  # other classes make no exceptions
        factory = error
        return lambda call: _made(factory, target)
    raise TypeError(
        f"error={error!r}: use an exception instance, an exception class, or a function "
        "of no arguments that returns an exception"
    )


def _instantiate(kind: type[BaseException], message: str) -> BaseException:
    try:
        return kind(message)
    except TypeError:  # a class whose constructor takes other arguments
        return kind()


def _made(factory: Callable[[], BaseException], victim: str) -> BaseException:
    error = factory()
    if not isinstance(error, BaseException):
        raise TypeError(
            f"the error factory {factory!r} for {victim} returned {error!r}, not an exception"
        )
    return error


@final
class ChaosMonkey:
    """Injects exceptions and latency into functions, reproducibly.

    ``seed``, with each fault's name and each call's number, fixes every draw (a fresh
    seed when omitted; see ``.seed``).
    ``log`` receives each fault as a FaultRecord with its undo; ``on_injection`` hears of
    every struck call. Under a dry-run log, decisions are recorded but nothing is raised
    or delayed.
    """

    def __init__(
        self,
        config: ChaosConfig | None = None,
        *,
        seed: int | None = None,
        log: FaultLog | None = None,
        on_injection: InjectionListener | None = None,
    ) -> None:
        self.config = config if config is not None else ChaosConfig()
        #: The switch for every fault of this monkey: functions and HTTP alike.
        self.enabled = self.config.enabled
        self.seed = fresh_seed() if seed is None else seed
        self.log = log if log is not None else FaultLog()
        self.dry_run = self.log.dry_run
        self._on_injection = on_injection
        self._injections: list[Injection] = []
        self._rules: list[Rule] = []
        self._names: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<ChaosMonkey seed={self.seed} {state}, {len(self._rules)} faults>"

    # -- faults ----------------------------------------------------------------------------

    def chaos(
        self,
        service: str | Callable[..., Any] | None = None,
        **options: Unpack[FaultOptions],
    ) -> Any:
        """Decorate a function, coroutine function or method with a fault.

        ``error`` raises, ``latency_ms`` (a number or a ``(low, high)`` range) delays,
        both do both; with neither, a struck call fails or is delayed (the config's
        range), even odds. ``rate`` (default: the config's ``failure_rate``) or
        ``every``, ``first`` and ``for_s`` choose the calls (:class:`Trigger`); ``when``
        filters them by their arguments. Usable bare: ``@monkey.chaos``.
        """
        if callable(service) or isinstance(service, (staticmethod, classmethod)):
            return self.chaos()(service)
        check_keywords("chaos", options, FaultOptions)
        _check_service(service)
        trigger = self._trigger(options)

        def decorate(func: _Func) -> _Func:
            kind, inner = _unwrap_descriptor(func)
            fault = self._function_fault(inner, _qualified(inner), service, trigger, options)
            wrapper = self._wrapper(inner, fault)
            handle = self._register(fault, lambda: None)
            wrapper.chaos_fault = handle  # type: ignore[attr-defined]
            return kind(wrapper) if kind is not None else wrapper  # type: ignore[return-value]

        return decorate

    def patch(
        self,
        target: str | object,
        attribute: str | None = None,
        /,
        *,
        service: str | None = None,
        **options: Unpack[FaultOptions],
    ) -> ActiveFault:
        """Put a fault on code the test cannot decorate, where the code under test looks
        it up: ``patch("shop.payments.charge", error=TimeoutError, rate=0.5)``, or
        ``patch(obj, "name", ...)``. The other arguments are :meth:`chaos`'s. The original
        comes back when the returned fault ends (``with``, ``.end()``, or :meth:`undo`)."""
        check_keywords("patch", options, FaultOptions)
        _check_service(service)
        if attribute is None:
            if not isinstance(target, str):
                raise TypeError(
                    f"patch({target!r}): give a dotted path, or an object and an attribute name"
                )
            owner, name, where = *patching.resolve(target), target
        else:
            owner, name, where = target, attribute, patching.describe(target, attribute)
        trigger = self._trigger(options)
        faults: list[FunctionFault] = []

        def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
            fault = self._function_fault(func, where, service, trigger, options)
            faults.append(fault)
            return self._wrapper(func, fault)

        restore = patching.replace(owner, name, wrap)
        return self._register(faults[0], restore)

    def _trigger(self, options: FaultOptions) -> Trigger:
        return Trigger.build(
            rate=options.get("rate"),
            every=options.get("every"),
            first=options.get("first"),
            for_s=options.get("for_s"),
            default_rate=self.config.failure_rate,
        )

    def _function_fault(
        self,
        func: Callable[..., Any],
        target: str,
        service: str | None,
        trigger: Trigger,
        options: FaultOptions,
    ) -> FunctionFault:
        if inspect.isasyncgenfunction(func):
            raise TypeError(
                f"{target} is an async generator function; put the fault on a coroutine "
                "function or a plain function instead"
            )
        when = options.get("when")
        if when is not None and not callable(when):
            raise TypeError(f"when={when!r}: use a function that takes a Call and returns a bool")
        return FunctionFault(
            self,
            target,
            service=service,
            error=options.get("error"),
            latency_ms=options.get("latency_ms"),
            trigger=trigger,
            when=when,
            signature=_signature(func) if when is not None else None,
        )

    def _wrapper(self, func: Callable[..., Any], fault: FunctionFault) -> Callable[..., Any]:
        monkey = self
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if monkey.enabled and fault.armed:
                    strike = fault.strike(args, kwargs)
                    if strike is not None:
                        await strike.apply_async()
                return await func(*args, **kwargs)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if monkey.enabled and fault.armed:
                strike = fault.strike(args, kwargs)
                if strike is not None:
                    strike.apply()
            return func(*args, **kwargs)

        return wrapper

    def _register(self, fault: FunctionFault, restore: Callable[[], None]) -> ActiveFault:
        """Log the fault; ending it disarms it (its undo) and restores what was patched
        (plumbing, undone even under dry run)."""
        return self.register(
            fault, FaultRecord("monkey", fault.target, fault.details(), self.dry_run), restore
        )

    def register(self, rule: Rule, record: FaultRecord, restore: Callable[[], None]) -> ActiveFault:
        """Track ``rule``: its record goes to the log, and the returned fault, when it
        ends (or at :meth:`undo`), disarms the rule and then runs ``restore``."""
        with self._lock:
            self._rules.append(rule)

        @_once
        def stop() -> None:
            rule.disarm()
            restore()

        self.log.defer(stop)
        rollback = self.log.record(record, rule.disarm)

        def end() -> None:
            try:
                rollback()
            finally:
                stop()

        return ActiveFault(record, rollback, end=end)

    # -- switches --------------------------------------------------------------------------

    @contextmanager
    def active(self) -> Iterator[ChaosMonkey]:
        """Turn the monkey on inside the block, and back to what it was after."""
        with self._switched(True):
            yield self

    @contextmanager
    def paused(self) -> Iterator[ChaosMonkey]:
        """Turn every fault of the monkey off inside the block, and back after."""
        with self._switched(False):
            yield self

    @contextmanager
    def _switched(self, on: bool) -> Iterator[None]:
        before, self.enabled = self.enabled, on
        try:
            yield
        finally:
            self.enabled = before

    # -- streams and records ---------------------------------------------------------------

    def fault_name(self, target: str) -> str:
        """A name for a new fault on ``target``, unique in this monkey (``target#2`` for
        the second), so that each fault has its own stream."""
        with self._lock:
            self._names[target] += 1
            count = self._names[target]
        return target if count == 1 else f"{target}#{count}"

    def record(self, injection: Injection) -> None:
        with self._lock:
            self._injections.append(injection)
        if self._on_injection is not None:
            self._on_injection(injection)

    @property
    def injections(self) -> list[Injection]:
        """Every struck call so far, in the order they were recorded (under threads, not
        quite the order of their call numbers)."""
        with self._lock:
            return list(self._injections)

    def stats(self) -> dict[str, float | int]:
        """The monkey's statistics: calls the faults considered
        (``experiments_run``), calls that failed, calls that were delayed."""
        with self._lock:
            runs = sum(rule.matched for rule in self._rules)
            failures = sum(1 for injection in self._injections if injection.kind != "latency")
            delays = sum(1 for injection in self._injections if injection.latency_ms > 0)
        return {
            "experiments_run": runs,
            "failures_injected": failures,
            "latencies_injected": delays,
            "failure_rate": failures / max(1, runs),
        }

    def report_sections(self, limit: int = 50) -> list[tuple[str, str]]:
        """A report section listing what was injected, a line per struck call (the last
        ``limit``); none when nothing was."""
        injections = self.injections
        if not injections:
            return []
        lines = [f"monkey seed {self.seed}: {len(injections)} calls struck"]
        if len(injections) > limit:
            lines.append(f"... {len(injections) - limit} earlier ones not shown")
        lines.extend(injection.describe() for injection in injections[-limit:])
        return [("chaos injections", "\n".join(lines))]

    def undo(self) -> list[BaseException]:
        """Disarm every fault and restore everything patched; return the errors met."""
        return self.log.undo()


def _check_service(service: object) -> None:
    if service is not None and (not isinstance(service, str) or not service):
        raise ValueError(f"service={service!r}: use a service name (a non-empty string) or None")


def _unwrap_descriptor(
    func: Any,
) -> tuple[type[staticmethod[Any, Any]] | type[classmethod[Any, Any, Any]] | None, Any]:
    if isinstance(func, (staticmethod, classmethod)):
        return type(func), func.__func__
    if not callable(func):
        raise TypeError(f"@chaos decorates functions and methods, not {func!r}")
    return None, func


def _qualified(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "?"
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have none
        return None


def _once(step: Callable[[], None]) -> Callable[[], None]:
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            step()

    return run
