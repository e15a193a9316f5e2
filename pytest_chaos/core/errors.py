"""The root of every exception pytest-chaos raises.

``except ChaosError`` catches any error of the package; each class keeps the other bases
its users already catch (``ValueError`` for bad input, ``TimeoutError``, ``RuntimeError``),
so adding the root changed no ``except`` clause that worked before.

:class:`ChaosInterrupt` is the one other root: not an error but a stop that pytest-chaos
raises into code under test (a run of an exploration that hung), which must get past that
code's ``except Exception``, as pytest's own outcomes (``Skipped``, ``Exit``) do."""

from __future__ import annotations


class ChaosError(Exception):
    """An error raised by pytest-chaos (never by the system under test)."""


class ChaosInterrupt(BaseException):
    """A stop pytest-chaos raises into code under test; not an ``Exception``, so code that
    catches every error does not swallow it."""
