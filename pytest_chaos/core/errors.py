"""The root of every exception pytest-chaos raises.

``except ChaosError`` catches any error of the package; each class keeps the other bases
its users already catch (``ValueError`` for bad input, ``TimeoutError``, ``RuntimeError``),
so adding the root changed no ``except`` clause that worked before."""

from __future__ import annotations


class ChaosError(Exception):
    """An error raised by pytest-chaos (never by the system under test)."""
