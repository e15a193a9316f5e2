"""The package's version, read from the installed distribution's metadata, so that it is
written once (in ``pyproject.toml``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version() -> str:
    """``0.1.0``, say; ``0+unknown`` for a source tree that was never installed."""
    try:
        return version("pytest-chaos")
    except PackageNotFoundError:
        return "0+unknown"


VERSION = installed_version()
