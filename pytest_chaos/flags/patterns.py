"""Unleash's ``REGEX`` operator, evaluated with Python's ``re`` as Unleash's Rust engine does.

Unleash (the Yggdrasil engine) matches with Rust's ``regex`` crate: a search anywhere in
the value, ``caseInsensitive`` as ``(?i)``, ``$`` only at the very end. The two syntaxes
share a core; a pattern is translated within it, refused (``PatternUnsupported``) where
the two engines would read it differently, and reported as ``PatternRejected`` where Rust
refuses it (lookaround, backreferences, atomic groups, ``\\Z``): Unleash then evaluates
the constraint to false.
"""

from __future__ import annotations

import re

__all__ = ["PatternRejected", "PatternUnsupported", "compile_pattern"]

_PLAIN_ESCAPES = frozenset("dDwWsSbBAntrfv")
_PUNCTUATION = frozenset("\\.+*?()|[]{}^$#&-~/!\"%',:;=@_`")
_REPETITION = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_GROUP_NAME = re.compile(r"\?P<[A-Za-z_][A-Za-z0-9_]*>")
_FLAGS = re.compile(r"\?[is]+(?:\)|:)")
_QUANTIFIERS = frozenset("*+?}")


class PatternRejected(ValueError):
    """Rust's regex engine refuses the pattern: Unleash evaluates the constraint to false."""


class PatternUnsupported(ValueError):
    """Python's ``re`` would not read the pattern as Rust's engine does."""


def _escape(pattern: str, at: int, in_class: bool) -> str:
    """The escape at ``at`` (a backslash), as Python should read it."""
    char = pattern[at + 1 : at + 2]
    if char == "z" and not in_class:
        return r"\Z"  # Rust's end of text
    if char == "Z" and not in_class:
        raise PatternRejected("\\Z is not Rust regex syntax (it has \\z)")
    if char.isdigit():
        raise PatternRejected(f"backreference \\{char} (Rust's regex has none)")
    if char in _PLAIN_ESCAPES and not (in_class and char in "bBA"):
        return "\\" + char
    if char in _PUNCTUATION:
        return "\\" + char
    raise PatternUnsupported(f"the escape \\{char}")


def _class(pattern: str, at: int) -> tuple[str, int]:
    """A bracketed class from ``at`` (its ``[``): its Python text and where it ends."""
    end = at + 1
    if pattern[end : end + 1] == "^":
        end += 1
    if pattern[end : end + 1] == "]":
        end += 1
    text = [pattern[at:end]]
    while end < len(pattern):
        char = pattern[end]
        if char == "]":
            return "".join(text) + "]", end + 1
        if char == "[":
            raise PatternUnsupported("a nested class or [:name:] inside a class")
        if pattern[end : end + 2] in ("&&", "--", "~~"):
            raise PatternUnsupported(f"the class operator {pattern[end : end + 2]}")
        if char == "\\":
            text.append(_escape(pattern, end, in_class=True))
            end += 2
            continue
        text.append(char)
        end += 1
    raise PatternRejected("an unclosed [")


def _group(pattern: str, at: int) -> str:
    """The opening of a group at ``at`` (its ``(``), checked."""
    rest = pattern[at + 1 :]
    if not rest.startswith("?") or rest.startswith("?:"):
        return "(" + ("?:" if rest.startswith("?:") else "")
    named = _GROUP_NAME.match(rest)
    if named:
        return "(" + named.group()
    flags = _FLAGS.match(rest)
    if flags:
        return "(" + flags.group()
    for start, what in (
        ("?=", "lookahead"),
        ("?!", "lookahead"),
        ("?<=", "lookbehind"),
        ("?<!", "lookbehind"),
        ("?>", "an atomic group"),
        ("?P=", "a backreference"),
        ("?(", "a conditional"),
    ):
        if rest.startswith(start):
            raise PatternRejected(f"{what} (Rust's regex has none)")
    raise PatternUnsupported(f"the group syntax ({rest[:4]}")


def translate(pattern: str) -> str:
    """The Python pattern that matches what Rust's regex matches for ``pattern``."""
    out: list[str] = []
    at = 0
    while at < len(pattern):
        char = pattern[at]
        if char == "\\":
            if at + 1 >= len(pattern):
                raise PatternRejected("a trailing backslash")
            out.append(_escape(pattern, at, in_class=False))
            at += 2
        elif char == "[":
            text, at = _class(pattern, at)
            out.append(text)
        elif char == "(":
            opening = _group(pattern, at)
            out.append(opening)
            at += len(opening)
        elif char == "$":
            out.append(r"\Z")  # Rust's $ never matches before a final newline
            at += 1
        elif char == "{":
            repetition = _REPETITION.match(pattern, at)
            if repetition is None:
                raise PatternUnsupported("a { that is not a repetition {n}, {n,} or {n,m}")
            out.append(repetition.group())
            at = repetition.end()
        else:
            out.append(char)
            at += 1
        if out[-1][-1:] in _QUANTIFIERS and pattern[at : at + 1] == "+" and char != "\\":
            raise PatternUnsupported("a possessive quantifier")
    return "".join(out)


def compile_pattern(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    """``pattern`` compiled to search as Unleash does; raises the two errors above."""
    translated = translate(pattern)
    try:
        return re.compile(translated, re.IGNORECASE if case_insensitive else 0)
    except re.error as error:
        raise PatternRejected(str(error)) from None
