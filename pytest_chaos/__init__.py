"""pytest-chaos: a pytest plugin for resilience testing."""

__version__ = "0.1.0"

__all__ = ["__version__"]
