"""Chaos Toolkit's runtime strategies, with chaostoolkit-lib 1.44.0's semantics: when the
steady-state hypothesis is checked (``chaoslib.types.Strategy``, ``chaoslib.run``'s
``should_run_*_method``), and when the experiment's rollbacks are played
(``chaoslib.run.run_rollback``)."""

from __future__ import annotations

#: Each hypothesis strategy and the phases in which it checks the hypothesis.
HYPOTHESIS_STRATEGIES: dict[str, tuple[str, ...]] = {
    "default": ("before", "after"),
    "before-method-only": ("before",),
    "after-method-only": ("after",),
    "during-method-only": ("during",),
    "continuously": ("before", "during", "after"),
    "skip": (),
}
#: Other names accepted for them: pytest-chaos's first short names, and the spelling the
#: ``chaos`` command still accepts (with a warning).
HYPOTHESIS_ALIASES = {
    "before": "before-method-only",
    "after": "after-method-only",
    "during": "during-method-only",
    "continously": "continuously",
}
ROLLBACK_STRATEGIES = ("default", "always", "never", "deviated")
#: The journal statuses under which the ``default`` rollback strategy does not play them.
_NO_ROLLBACKS_BY_DEFAULT = ("failed", "interrupted")


def hypothesis_strategy(name: object) -> str:
    """Chaos Toolkit's name of the hypothesis strategy ``name`` (one of its names, or an
    alias); ValueError naming the allowed ones otherwise."""
    if isinstance(name, str):
        name = HYPOTHESIS_ALIASES.get(name, name)
        if name in HYPOTHESIS_STRATEGIES:
            return name
    allowed = ", ".join(HYPOTHESIS_STRATEGIES)
    aliases = ", ".join(HYPOTHESIS_ALIASES)
    raise ValueError(f"strategy={name!r}: use one of {allowed} (or {aliases})")


def rollback_strategy(name: object) -> str:
    """``name`` if it is one of Chaos Toolkit's rollback strategies; ValueError otherwise."""
    if isinstance(name, str) and name in ROLLBACK_STRATEGIES:
        return name
    raise ValueError(f"rollback_strategy={name!r}: use one of {', '.join(ROLLBACK_STRATEGIES)}")


def plays_rollbacks(strategy: str, status: str | None, deviated: bool) -> bool:
    """Whether the rollbacks are played, as ``chaoslib.run.run_rollback`` decides: always,
    never, only when the hypothesis deviated, or (``default``) unless the experiment failed
    or was interrupted."""
    if strategy == "always":
        return True
    if strategy == "deviated":
        return deviated
    if strategy == "default":
        return status not in _NO_ROLLBACKS_BY_DEFAULT
    return False
