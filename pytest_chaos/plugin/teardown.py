"""What a fixture's teardown could not undo, raised as one error that names each failure, so
that a test whose teardown left something behind cannot pass unnoticed."""

from __future__ import annotations


def raise_teardown_errors(errors: list[BaseException]) -> None:
    if errors:
        raise RuntimeError(
            "chaos teardown could not undo everything: "
            + "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        )
