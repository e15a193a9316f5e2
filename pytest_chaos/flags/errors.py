"""What a flag store says about a document: refused, or evaluated to off as Unleash does.

Two different answers to a document a test did not mean to write. What the store cannot
evaluate exactly as Unleash does is refused at load with a :class:`FlagConfigError`.
What Unleash itself evaluates to off (a missing segment, a version written ``v1.2.3``, a
value Unleash's rule grammar cannot read...) is off in the store too, and the load emits
one :class:`FlagOffWarning` naming the feature, the strategy or constraint, and why.
"""

from __future__ import annotations

import warnings

from pytest_chaos.core.errors import ChaosError

__all__ = ["FlagConfigError", "FlagOffWarning", "RuleBroken", "warn_off"]


class FlagConfigError(ChaosError, ValueError):
    """A feature-toggle document holds a value that cannot be evaluated; names where and what."""


class FlagOffWarning(ChaosError, UserWarning):
    """A feature, strategy or constraint that Unleash evaluates to off, and so does the store.

    Filter or assert on it like any warning: ``-W error::pytest_chaos.flags.errors.FlagOffWarning``
    makes a test fail on a flag that can never be on, ``pytest.warns(FlagOffWarning)``
    checks that one is.
    """


class RuleBroken(ChaosError):
    """Unleash cannot compile the feature's rule, so the whole feature is off (internal)."""


def warn_off(message: str) -> None:
    """Emit a :class:`FlagOffWarning` pointing at the caller's caller's caller (the load)."""
    warnings.warn(message, FlagOffWarning, stacklevel=4)
