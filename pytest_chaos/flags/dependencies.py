"""Unleash's dependent features: a child is on only when each parent is as it requires.

A feature's ``dependencies`` name parents: ``{"feature": name}`` requires the parent on
for the same context; ``"enabled": false`` requires it off; a non-empty ``"variants"``
list requires it on with one of those variants (a parent without variants answers
``disabled``, which Unleash lets pass). A parent that is missing, or has dependencies of its own (Unleash allows
one level), leaves the child off, with a warning at load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, final

from pytest_chaos.flags.errors import FlagConfigError

__all__ = ["Dependency", "parse_dependencies", "requirement"]

Context = Mapping[str, Any]
Check = Callable[[Context], bool]


@final
@dataclass(frozen=True)
class Dependency:
    """One parent requirement of a feature."""

    feature: str
    enabled: bool = True
    variants: frozenset[str] = frozenset()


def parse_dependencies(raw: object, feature: str) -> tuple[Dependency, ...]:
    """A feature's ``dependencies``, refused with a :class:`FlagConfigError` if malformed."""
    if raw is None:
        return ()
    where = f"feature {feature!r} dependencies"
    if not isinstance(raw, list):
        raise FlagConfigError(f"{where} must be a list, got {raw!r}")
    parsed = []
    for entry in raw:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("feature"), str):
            raise FlagConfigError(f"{where}: each needs a feature name, got {entry!r}")
        enabled = entry.get("enabled", True)
        variants = entry.get("variants") or []
        if not isinstance(enabled, bool):
            raise FlagConfigError(f"{where}: enabled must be true or false, got {enabled!r}")
        if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
            raise FlagConfigError(f"{where}: variants must be a list of names, got {variants!r}")
        parsed.append(Dependency(entry["feature"], enabled, frozenset(variants)))
    return tuple(parsed)


def requirement(
    dependency: Dependency,
    parent_enabled: Check | None,
    parent_variant: Callable[[Context], Mapping[str, Any] | None] | None,
) -> Check | None:
    """The check of one dependency given the parent's predicates; None when it never holds.

    ``parent_variant`` answers the parent's variant, or None where Unleash's engine fails
    to pick it (all weights 0): Unleash picks it for every check, so the child is then off.
    ``parent_variant`` is None for a parent without variants (nothing to pick).
    A required variant list is met by one of its names, or by a parent that is on
    without a variant (Unleash checks names only of a variant that was picked).
    """
    if parent_enabled is None:
        return None
    if not dependency.enabled:
        return lambda context: not parent_enabled(context)
    if parent_variant is None:
        return parent_enabled  # no variant: every required list passes
    names = dependency.variants

    def check(context: Context) -> bool:
        if not parent_enabled(context):
            return False
        variant = parent_variant(context)
        if variant is None:
            return False
        return not names or not variant["enabled"] or variant["name"] in names

    return check
