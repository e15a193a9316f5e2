"""Python functions as Chaos Toolkit ``python`` providers that chaostoolkit-lib accepts.

chaostoolkit-lib validates such a provider by importing its module, finding a plain function
of that name there, and binding the provider's arguments to its signature. A module-level
function is named as it is, so ``chaos run`` of the journal's experiment could call it.
Anything chaostoolkit-lib could not import (a lambda, a nested function, a method, a
``functools.partial``, a callable object, a function of ``__main__``) is named by the
stand-in :func:`unimportable` with the callable's qualified name: the journal validates, and
a ``chaos run`` of its experiment fails on that activity saying why.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any, NoReturn

#: Parameters chaostoolkit-lib passes out of band when a function declares them.
_OUT_OF_BAND = ("configuration", "secrets")


def unimportable(callable: str, **arguments: Any) -> NoReturn:
    """The stand-in for a function Chaos Toolkit cannot import: calling it says so."""
    raise RuntimeError(
        f"{callable} is a function Chaos Toolkit cannot import (a lambda, a nested function "
        "or another callable without a module-level name); run this experiment with pytest"
    )


def python_provider(
    module: str,
    func: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    called_with: Collection[str] = (),
) -> dict[str, Any]:
    """A ``python`` provider calling ``module.func(**arguments)`` if chaostoolkit-lib can
    import that function and bind those arguments (and the names in ``called_with``, which
    it adds when it calls, as ``value`` for a tolerance); else the stand-in's."""
    given = dict(arguments or {})
    function = getattr(sys.modules.get(module), func, None) if module != "__main__" else None
    if _accepts(function, given, called_with):
        return {"type": "python", "module": module, "func": func, "arguments": given}
    return _stand_in(f"{module}.{func}", given)


def provider_of(
    fn: Callable[..., object],
    arguments: Mapping[str, Any] | None = None,
    *,
    called_with: Collection[str] = (),
) -> dict[str, Any]:
    """The ``python`` provider that calls ``fn`` (see :func:`python_provider`)."""
    module = getattr(fn, "__module__", None) or "__main__"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    if getattr(sys.modules.get(module), name, None) is not fn:  # a closure, a partial...
        return _stand_in(f"{module}.{name}", dict(arguments or {}))
    return python_provider(module, name, arguments, called_with=called_with)


def _stand_in(callable: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "python",
        "module": __name__,
        "func": unimportable.__name__,
        "arguments": {"callable": callable, **arguments},
    }


def _accepts(function: object, arguments: dict[str, Any], called_with: Collection[str]) -> bool:
    """Whether chaostoolkit-lib finds ``function`` (a plain function or a builtin) and binds
    ``arguments`` to it, as it does when it validates, and when it calls it."""
    if not (inspect.isfunction(function) or inspect.isbuiltin(function)):
        return False
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False
    out_of_band = {name: None for name in _OUT_OF_BAND if name in signature.parameters}
    try:
        signature.bind(**arguments, **out_of_band)
        signature.bind(**arguments, **out_of_band, **dict.fromkeys(called_with))
    except TypeError:
        return False
    return True
