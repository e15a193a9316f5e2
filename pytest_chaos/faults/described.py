"""Faults described before they are applied: one vocabulary for network, process, container,
in-process and HTTP faults and for a user's own action with its undo.

A description is applied by an experiment on its timeline (``start_after_s``, ``for_s``),
or used directly as a context manager in a plain test. Its target is a handle (a proxy, a
service) or a name that the experiment resolves through the test's fixtures (``"redis"``:
the ``toxiproxy`` proxy or the ``service`` of that name).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, final

from pytest_chaos.core.activity import provider_of, python_provider
from pytest_chaos.core.checks import seconds
from pytest_chaos.core.faultlog import ActiveFault, FaultLog, FaultRecord


class Ending(Protocol):
    """What applying a fault returns: something that ends it (a toxic, an outage, an
    :class:`ActiveFault`)."""

    def end(self) -> None: ...


class Resolver(Protocol):
    """Where an experiment finds what a fault names: the test's proxies, services, Chaos
    Monkey, HTTP faults, and the fault log for a user's own actions."""

    def proxy(self, name: str) -> Any: ...
    def service(self, name: str) -> Any: ...
    def monkey(self) -> Any: ...
    def http(self) -> Any: ...
    def log(self) -> FaultLog: ...


@final
class Unresolved:
    """The resolver of a fault used outside an experiment: names cannot be looked up."""

    def _refuse(self, what: str) -> Any:
        raise ValueError(
            f"this fault names its {what}; outside chaos.experiment give the handle itself "
            f"(the proxy or service object, or the chaos_monkey / chaos_http fixture)"
        )

    def proxy(self, name: str) -> Any:
        return self._refuse("proxy")

    def service(self, name: str) -> Any:
        return self._refuse("service")

    def monkey(self) -> Any:
        return self._refuse("monkey")

    def http(self) -> Any:
        return self._refuse("HTTP faults")

    def log(self) -> FaultLog:
        return FaultLog()


@final
@dataclass(frozen=True)
class Fault:
    """A fault not yet applied: what it does (``kind``), to what (``target``), with which
    ``arguments``, when on the experiment's timeline (``start_after_s`` after the method
    starts, for ``for_s`` seconds; None: until the method ends)."""

    kind: str
    target: str
    arguments: dict[str, Any]
    apply_to: Callable[[Resolver], Ending] = field(repr=False, compare=False)
    start_after_s: float = 0.0
    for_s: float | None = None
    func: str = ""
    provider: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        seconds("start_after_s", self.start_after_s, allow_zero=True)
        if self.for_s is not None:
            seconds("for_s", self.for_s, allow_zero=False)

    def describe(self) -> str:
        """``latency of redis (ms=300) from 1 s for 2 s``."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
        text = f"{self.kind} of {self.target}" + (f" ({shown})" if shown else "")
        if self.start_after_s:
            text += f" from {self.start_after_s:g} s"
        if self.for_s is not None:
            text += f" for {self.for_s:g} s"
        return text

    def at(self, start_after_s: float | None = None, for_s: float | None = None) -> Fault:
        """The same fault at another place on the timeline."""
        return replace(
            self,
            start_after_s=self.start_after_s if start_after_s is None else start_after_s,
            for_s=self.for_s if for_s is None else for_s,
        )

    def apply(self, resolver: Resolver | None = None) -> Ending:
        """Apply the fault now; the result ends it."""
        return self.apply_to(resolver if resolver is not None else Unresolved())

    def __enter__(self) -> Ending:
        ending = self.apply()
        object.__setattr__(self, "_ending", ending)
        return ending

    def __exit__(self, *exc_info: object) -> None:
        ending: Ending | None = self.__dict__.pop("_ending", None)
        if ending is not None:
            ending.end()

    def to_activity(self) -> dict[str, Any]:
        """The fault as a Chaos Toolkit action, for the journal's experiment."""
        provider = self.provider or python_provider(
            __package__ or __name__,
            self.func or self.kind,
            {"target": self.target, **_jsonable(self.arguments)},
        )
        activity: dict[str, Any] = {
            "type": "action",
            "name": self.describe(),
            "provider": provider,
        }
        if self.start_after_s:
            activity["pauses"] = {"before": self.start_after_s}
        return activity


def _jsonable(arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        for key, value in arguments.items()
    }


def _name_of(target: Any) -> str:
    return target if isinstance(target, str) else str(getattr(target, "name", target))


#: A string that is an address rather than a name: ``127.0.0.1:8474``, ``localhost:6379``.
_ADDRESS = re.compile(r"(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d+")


def _target(func: str, target: Any, handle_method: str, what: str) -> Any:
    """``target`` if it is a name or a handle with ``handle_method``; else an error saying
    what to give (an address is not a name)."""
    if isinstance(target, str):
        if not target.strip():
            raise ValueError(f"faults.{func}({target!r}): name the {what}, or give its handle")
        if _ADDRESS.fullmatch(target):
            raise ValueError(
                f"faults.{func}({target!r}): that is an address; name the {what} (as it was "
                "created) or give its handle"
            )
        return target
    if not callable(getattr(target, handle_method, None)):
        raise TypeError(f"faults.{func}({target!r}): give the {what}'s handle or its name")
    return target


def _whole(func: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"faults.{func}({name}={value!r}): use a whole number, 0 or more")
    return value


def _check_toxic(func: str, type: Any, attributes: dict[str, Any], options: dict[str, Any]) -> None:
    """Refuse now what a Toxiproxy server would refuse when the fault is applied."""
    from pytest_chaos.proxy.errors import ToxiproxyError
    from pytest_chaos.proxy.registry import REGISTRY, parse_toxic

    if type not in REGISTRY:
        raise ValueError(f"faults.{func}(type={type!r}): use one of {', '.join(REGISTRY)}")
    stream = options.get("stream", "downstream")
    if stream not in ("upstream", "downstream"):
        raise ValueError(f"faults.{func}(stream={stream!r}): use 'upstream' or 'downstream'")
    try:
        parse_toxic({"type": type, **options, "attributes": attributes})
    except ToxiproxyError as error:
        raise ValueError(f"faults.{func}(): {error}") from None


def _proxy(target: Any, resolver: Resolver) -> Any:
    return resolver.proxy(target) if isinstance(target, str) else target


def _service(target: Any, resolver: Resolver) -> Any:
    return resolver.service(target) if isinstance(target, str) else target


# -- network faults, on a Toxiproxy proxy ------------------------------------------------------


def _toxic_fault(
    func: str,
    target: Any,
    type: str,
    arguments: dict[str, Any],
    attributes: dict[str, Any],
    options: dict[str, Any],
    start_after_s: float,
    for_s: float | None,
) -> Fault:
    """A toxic on proxy ``target``; ``arguments`` are those of the constructor ``func``
    (for the journal), ``attributes`` the toxic's own."""
    _target(func, target, "add_toxic", "proxy")
    _check_toxic(func, type, attributes, options)
    return Fault(
        type,
        _name_of(target),
        {**arguments, **options},
        lambda resolver: _proxy(target, resolver).add_toxic(type, **options, **attributes),
        start_after_s,
        for_s,
        func=func,
    )


def toxic(
    target: Any,
    type: str,
    *,
    stream: str = "downstream",
    toxicity: float = 1.0,
    start_after_s: float = 0.0,
    for_s: float | None = None,
    **attributes: Any,
) -> Fault:
    """Any toxic on proxy ``target`` (a handle, or a name the experiment looks up)."""
    options = {"stream": stream, "toxicity": toxicity}
    arguments = {"type": type, **attributes}
    return _toxic_fault("toxic", target, type, arguments, attributes, options, start_after_s, for_s)


def latency(
    target: Any,
    ms: int,
    jitter: int = 0,
    *,
    stream: str = "downstream",
    toxicity: float = 1.0,
    start_after_s: float = 0.0,
    for_s: float | None = None,
) -> Fault:
    """Delay data through the proxy by ``ms`` milliseconds, plus or minus ``jitter``."""
    options = {"stream": stream, "toxicity": toxicity}
    _whole("latency", "ms", ms)
    _whole("latency", "jitter", jitter)
    return _toxic_fault(
        "latency",
        target,
        "latency",
        {"ms": ms, "jitter": jitter},
        {"latency": ms, "jitter": jitter},
        options,
        start_after_s,
        for_s,
    )


def bandwidth(
    target: Any, kb_per_s: int, *, start_after_s: float = 0.0, for_s: float | None = None
) -> Fault:
    """Limit the proxy to ``kb_per_s`` kilobytes a second."""
    _whole("bandwidth", "kb_per_s", kb_per_s)
    return _toxic_fault(
        "bandwidth",
        target,
        "bandwidth",
        {"kb_per_s": kb_per_s},
        {"rate": kb_per_s},
        {},
        start_after_s,
        for_s,
    )


def timeout(
    target: Any, ms: int = 0, *, start_after_s: float = 0.0, for_s: float | None = None
) -> Fault:
    """Swallow all data through the proxy, closing after ``ms`` (0: never): a hung peer."""
    _whole("timeout", "ms", ms)
    return _toxic_fault(
        "timeout", target, "timeout", {"ms": ms}, {"timeout": ms}, {}, start_after_s, for_s
    )


def reset_peer(
    target: Any, ms: int = 0, *, start_after_s: float = 0.0, for_s: float | None = None
) -> Fault:
    """Reset connections through the proxy (TCP RST) ``ms`` after their first data."""
    _whole("reset_peer", "ms", ms)
    return _toxic_fault(
        "reset_peer", target, "reset_peer", {"ms": ms}, {"timeout": ms}, {}, start_after_s, for_s
    )


def down(target: Any, *, start_after_s: float = 0.0, for_s: float | None = None) -> Fault:
    """Take the proxy down: its listener closed, its connections cut."""
    _target("down", target, "down", "proxy")
    return Fault(
        "down",
        _name_of(target),
        {},
        lambda resolver: _proxy(target, resolver).down(),
        start_after_s,
        for_s,
    )


# -- process and container faults, on a service -----------------------------------------------


def kill(target: Any, *, start_after_s: float = 0.0, for_s: float | None = None) -> Fault:
    """Kill the service (SIGKILL, or the container's kill); it starts again when the fault
    ends, and waits until it is ready."""
    _target("kill", target, "kill", "service")
    return Fault(
        "kill",
        _name_of(target),
        {},
        lambda resolver: _service(target, resolver).kill(),
        start_after_s,
        for_s,
    )


def stop(
    target: Any,
    *,
    timeout_s: float | None = None,
    start_after_s: float = 0.0,
    for_s: float | None = None,
) -> Fault:
    """Stop the service as an orchestrator would (SIGTERM, then SIGKILL after ``timeout_s``);
    it starts again when the fault ends."""
    _target("stop", target, "stop", "service")
    if timeout_s is not None:
        seconds("timeout_s", timeout_s, allow_zero=True)
    return Fault(
        "stop",
        _name_of(target),
        {"timeout_s": timeout_s},
        lambda resolver: _service(target, resolver).stop(timeout_s),
        start_after_s,
        for_s,
    )


def pause(target: Any, *, start_after_s: float = 0.0, for_s: float | None = None) -> Fault:
    """Freeze the service (SIGSTOP, or the container's pause): it accepts connections but
    answers nothing until the fault ends."""
    _target("pause", target, "pause", "service")
    return Fault(
        "pause",
        _name_of(target),
        {},
        lambda resolver: _service(target, resolver).pause(),
        start_after_s,
        for_s,
    )


# -- in-process faults ----------------------------------------------------------------------


def patch(
    target: str, *, start_after_s: float = 0.0, for_s: float | None = None, **options: Any
) -> Fault:
    """The Chaos Monkey's patch of ``target`` (a dotted path), with its options
    (``error=``, ``latency_ms=``, ``rate=``...), through the test's ``chaos_monkey``."""
    from pytest_chaos.inject.monkey import FaultOptions
    from pytest_chaos.inject.rules import check_keywords

    parts = target.split(".") if isinstance(target, str) else []
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise ValueError(
            f"faults.patch({target!r}): use a dotted path such as 'package.module.function'"
        )
    check_keywords(
        "faults.patch", {k: v for k, v in options.items() if k != "service"}, FaultOptions
    )
    return Fault(
        "patch",
        target,
        dict(options),
        lambda resolver: resolver.monkey().patch(target, **options),
        start_after_s,
        for_s,
    )


def http(
    kind: str,
    *args: Any,
    start_after_s: float = 0.0,
    for_s: float | None = None,
    **options: Any,
) -> Fault:
    """An HTTP fault rule of the test's ``chaos_http``: ``http("status", 503,
    path="/pay")``, ``http("latency", 200)``, ``http("connect_error", host=...)``..."""
    kinds = ("status", "latency", "connect_error", "read_timeout", "truncate")
    if kind not in kinds:
        raise ValueError(f"http({kind!r}): use one of {', '.join(kinds)}")
    _check_http_rule(kind, args, options)
    shown = {"kind": kind, **({"args": list(args)} if args else {}), **options}
    where = " ".join(f"{k}={options[k]}" for k in ("host", "path") if k in options)
    return Fault(
        f"http.{kind}",
        where or "any request",
        shown,
        lambda resolver: getattr(resolver.http(), kind)(*args, **options),
        start_after_s,
        for_s,
        func="http",
    )


# -- a user's own action ---------------------------------------------------------------------


def action(
    name: str,
    apply: Callable[[], object],
    undo: Callable[[], object] | None = None,
    *,
    start_after_s: float = 0.0,
    for_s: float | None = None,
) -> Fault:
    """A fault of your own: ``apply()`` breaks something, ``undo()`` repairs it, when the
    fault ends and at teardown whatever happened (under dry run, neither is called)."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"action({name!r}): name the action with a non-empty string")
    if not callable(apply) or (undo is not None and not callable(undo)):
        raise TypeError(f"action({name!r}): apply and undo must be functions")

    def run(resolver: Resolver) -> Ending:
        log = resolver.log()
        record = FaultRecord("action", name, {}, dry_run=log.dry_run)
        if not log.dry_run:
            apply()
        rollback = log.record(record, (lambda: None) if undo is None else lambda: _call(undo))
        return ActiveFault(record, rollback)

    provider = provider_of(apply)
    return Fault("action", name, {}, run, start_after_s, for_s, provider=provider)


def _call(step: Callable[[], object]) -> None:
    step()


def _check_http_rule(kind: str, args: tuple[Any, ...], options: Mapping[str, Any]) -> None:
    """Refuse now arguments that ``chaos_http``'s rule ``kind`` would refuse by name."""
    from pytest_chaos.inject.http import ChaosHTTP, RequestMatch
    from pytest_chaos.inject.rules import check_keywords

    signature = inspect.signature(getattr(ChaosHTTP, kind))
    own = {key: value for key, value in options.items() if key in signature.parameters}
    try:
        signature.bind(None, *args, **own)
    except TypeError as error:
        raise TypeError(f"faults.http({kind!r}): {error}") from None
    check_keywords("faults.http", {k: v for k, v in options.items() if k not in own}, RequestMatch)
