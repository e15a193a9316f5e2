"""Unleash's ``REGEX`` operator, evaluated with Python's ``re`` as Unleash's Rust engine does.

Unleash (the Yggdrasil engine) matches with Rust's ``regex`` crate: a search anywhere in
the value, ``caseInsensitive`` as ``(?i)``, ``$`` only at the very end (``(?m)``: at line
ends), flags settable anywhere (``a(?i)b``, up to the end of the group), ASCII classes
``[[:alpha:]]``. The two syntaxes share a core; a pattern is translated within it,
refused (``PatternUnsupported``) where the two engines would read it differently, and
reported as ``PatternRejected`` where Rust refuses it (lookaround, backreferences, atomic
groups, ``\\Z``): Unleash then evaluates the constraint to false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pytest_chaos.core.errors import ChaosError

__all__ = ["PatternRejected", "PatternUnsupported", "compile_pattern", "translate"]

_PLAIN_ESCAPES = frozenset("dDwWsSbBAntrfv")
_PUNCTUATION = frozenset("\\.+*?()|[]{}^$#&-~/!\"%',:;=@_`")
_REPETITION = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_GROUP_NAME = re.compile(r"\?P<[A-Za-z_][A-Za-z0-9_]*>")
_FLAGS = re.compile(r"\?([ims]*)(?:-([ims]+))?([:)])")
_QUANTIFIERS = frozenset("*+?}")
_POSIX = {  # Rust's ASCII classes, as members of a bracketed class
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7F",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1F\\x7F",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]+):\]")


class PatternRejected(ChaosError, ValueError):
    """Rust's regex engine refuses the pattern: Unleash evaluates the constraint to false."""


class PatternUnsupported(ChaosError, ValueError):
    """Python's ``re`` would not read the pattern as Rust's engine does."""


@dataclass
class _Group:
    """A group being translated: its multi-line flag, and the flag scopes opened in it
    (a Rust ``(?i)`` runs to the end of the group; Python's must be a scoped group)."""

    multiline: bool
    scopes: list[str] = field(default_factory=list)

    def close(self) -> str:
        return ")" * len(self.scopes)

    def reopen(self) -> str:
        return "".join(f"(?{scope}:" for scope in self.scopes)


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
        posix = _POSIX_CLASS.match(pattern, end)
        if posix is not None:
            negated, name = posix.groups()
            if negated or name not in _POSIX:
                raise PatternUnsupported(f"the class [:{negated}{name}:]")
            text.append(_POSIX[name])
            end = posix.end()
            continue
        if char == "[":
            raise PatternUnsupported("a nested class inside a class")
        if pattern[end : end + 2] in ("&&", "--", "~~"):
            raise PatternUnsupported(f"the class operator {pattern[end : end + 2]}")
        if char == "\\":
            text.append(_escape(pattern, end, in_class=True))
            end += 2
            continue
        text.append(char)
        end += 1
    raise PatternRejected("an unclosed [")


def _group(pattern: str, at: int, groups: list[_Group]) -> tuple[str, int]:
    """The group or flag setting at ``at`` (its ``(``): its Python text and its length."""
    rest = pattern[at + 1 :]
    current = groups[-1]
    flags = _FLAGS.match(rest)
    if flags is not None and (flags.group(1) or flags.group(2)):
        on, off, end = flags.group(1), flags.group(2) or "", flags.group(3)
        multiline = ("m" in on) or (current.multiline and "m" not in off)
        scope = on + (f"-{off}" if off else "")
        if end == ":":  # a scoped group: (?i:...)
            groups.append(_Group(multiline))
            return f"(?{scope}:", flags.end() + 1
        current.multiline = multiline  # (?i): to the end of the enclosing group
        current.scopes.append(scope)
        return f"(?{scope}:", flags.end() + 1
    groups.append(_Group(current.multiline))
    if not rest.startswith("?"):
        return "(", 1
    if rest.startswith("?:"):
        return "(?:", 3
    named = _GROUP_NAME.match(rest)
    if named:
        return "(" + named.group(), 1 + named.end()
    groups.pop()
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
    groups = [_Group(multiline=False)]
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
            text, length = _group(pattern, at, groups)
            out.append(text)
            at += length
        elif char == ")":
            if len(groups) == 1:
                raise PatternRejected("an unopened )")
            out.append(groups.pop().close() + ")")
            at += 1
        elif char == "|":
            out.append(groups[-1].close() + "|" + groups[-1].reopen())
            at += 1
        elif char == "$":
            # Rust's $ never matches before a final newline; with (?m) it ends each line
            out.append("$" if groups[-1].multiline else r"\Z")
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
    if len(groups) > 1:
        raise PatternRejected("an unclosed (")
    return "".join(out) + groups[0].close()


def compile_pattern(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    """``pattern`` compiled to search as Unleash does; raises the two errors above."""
    translated = translate(pattern)
    try:
        return re.compile(translated, re.IGNORECASE if case_insensitive else 0)
    except re.error as error:
        raise PatternRejected(str(error)) from None
