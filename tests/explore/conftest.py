"""The explorer's tests. ``project/`` is a small test suite the tests explore in a pytest
of its own; it is not collected here."""

collect_ignore = ["project"]
