"""Replacing a function where the code under test looks it up, and putting it back: module
functions, methods (plain, static, class; own or inherited) and attributes of instances."""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


def resolve(target: str) -> tuple[object, str]:
    """The object that holds the last name of dotted path ``target``, and that name: the
    longest importable module prefix, then attributes (``shop.payments.Gateway.charge``)."""
    parts = target.split(".") if isinstance(target, str) else []
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise ValueError(
            f"patch target {target!r}: use a dotted path such as 'package.module.function' "
            "or 'package.module.Class.method'"
        )
    owner: object = None
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            owner = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not _is_prefix(error.name, module_name):
                raise  # the module exists but one of its own imports is missing
            continue
        break
    else:
        raise ValueError(f"patch target {target!r}: no module {parts[0]!r} can be imported")
    for depth, name in enumerate(parts[cut:-1], start=cut):
        if not hasattr(owner, name):
            raise ValueError(_missing(target, ".".join(parts[:depth]), owner, name))
        owner = getattr(owner, name)
    name = parts[-1]
    if not hasattr(owner, name):
        raise ValueError(_missing(target, ".".join(parts[:-1]), owner, name))
    return owner, name


def _is_prefix(missing: str, module_name: str) -> bool:
    return module_name == missing or module_name.startswith(missing + ".")


def _missing(target: str, where: str, owner: object, name: str) -> str:
    kind = "module" if isinstance(owner, ModuleType) else type(owner).__name__
    return f"patch target {target!r}: {kind} {where!r} has no attribute {name!r}"


@dataclass
class _Layer:
    """One replacement of an attribute: what was there before, and whether it has ended."""

    owner: object
    had_own: bool
    original: object
    ended: bool = False


#: The replacements in place per (owner, attribute), oldest first. A replacement ended out of
#: order stays in place (its wrapper is disarmed, so it calls straight through) until the
#: ones above it end too; then they all come off, and the original is back.
_LAYERS: dict[tuple[int, str], list[_Layer]] = {}
_LAYERS_LOCK = threading.Lock()


def replace(owner: object, name: str, wrap: Wrap) -> Callable[[], None]:
    """Set ``owner.name`` to ``wrap(original)``, keeping static and class methods what they
    were; return the function that puts the original back (or removes the replacement
    when the attribute was inherited)."""
    if not hasattr(owner, name):
        raise ValueError(f"patch target {describe(owner, name)!r}: {owner!r} has no attribute")
    if isinstance(owner, (type, ModuleType)):
        raw = inspect.getattr_static(owner, name)
        if isinstance(raw, (staticmethod, classmethod)):
            replacement: object = type(raw)(wrap(_callable(owner, name, raw.__func__)))
        else:
            replacement = wrap(_callable(owner, name, raw))
    else:  # an instance: wrap what the instance answers (a bound method, a callable)
        replacement = wrap(_callable(owner, name, getattr(owner, name)))
    own = getattr(owner, "__dict__", {})
    layer = _Layer(owner, name in own, own.get(name))
    key = (id(owner), name)
    with _LAYERS_LOCK:
        setattr(owner, name, replacement)
        _LAYERS.setdefault(key, []).append(layer)

    def restore() -> None:
        with _LAYERS_LOCK:
            layer.ended = True
            layers = _LAYERS.get(key, [])
            while layers and layers[-1].ended:
                _put_back(layers.pop(), name)
            if not layers:
                _LAYERS.pop(key, None)

    return restore


def _put_back(layer: _Layer, name: str) -> None:
    if layer.had_own:
        setattr(layer.owner, name, layer.original)
    else:
        delattr(layer.owner, name)


def _callable(owner: object, name: str, value: object) -> Callable[..., Any]:
    if not callable(value):
        raise TypeError(f"patch {owner!r}.{name}: {value!r} is not callable; patch a function")
    return value


def describe(owner: object, name: str) -> str:
    """A dotted name for ``owner.name`` when the test passed an object, not a path."""
    if isinstance(owner, ModuleType):
        return f"{owner.__name__}.{name}"
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{name}"
    return f"{type(owner).__module__}.{type(owner).__qualname__}.{name}"
