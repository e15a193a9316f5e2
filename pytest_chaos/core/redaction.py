"""Secrets out of every artefact: journals, reports, JUnit XML, Allure, the terminal.

What is a secret: the credentials of a URL (``user:password@``), and the value of anything
whose *name* says token, key, secret, password or auth (searched, ignoring case, so
``api_key``, ``X-Auth-Token`` and ``client_secret`` count) or matches a pattern the user
added (``--chaos-redact``): query and form parameters, ``name=value`` pairs, quoted keys of
JSON and Python literals (``"password": "..."``), headers to the end of their line
(``Authorization: Bearer ...``; not exception names such as ``KeyError:``), and the keys of journal objects (their whole value goes). Each is replaced by
``***``.

Call :func:`redact` (any JSON-like value) or :func:`redact_text` wherever an artefact is
written; the session activates the user's patterns for its duration (:func:`activate`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, final

MASK = "***"
DEFAULT_NAMES = r"token|key|secret|passw(?:or)?d|pwd|pass(?![a-z])|auth"
"""What the names of secret values say (password also as passwd, pwd, or a name ending in
pass: redis's requirepass), whatever the user adds."""

# The patterns are compiled on first use (re caches them): loading the plugin stays cheap.
# a URL, without the punctuation that ends a sentence or a quote around it
_URL = r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]*[^\s'\"<>`.,:;!?)\]}]"
_USERINFO = r"^(?P<scheme>[^:]+://)(?P<userinfo>[^/@?#]+)@"
_PARAMETER = r"(?P<name>[^?&;#=/]+)=(?P<value>[^&;#]*)"
# name=value outside URLs: --password=..., API_KEY=..., token=...
_ASSIGNMENT = (
    r"(?P<name>[A-Za-z_][\w.-]*)=(?!//)(?P<value>[^\s&;,'\"<>()\[\]{}]*[^\s&;,'\"<>()\[\]{}.:!?])"
)
# "name": value and 'name': value, as JSON and Python literals write them
_QUOTED_KEY = (
    r"""(?P<key>(?P<q>["'])(?P<name>[^"'\s]+)(?P=q)\s*:\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,}\]{\[][^\s,}\]]*)"""
)
# a header, to the end of its line: Authorization: Bearer ...
_HEADER = r"(?P<head>\b(?P<name>[A-Za-z][\w-]*):[ \t]*)(?!//)(?P<value>\S[^\r\n]*)"
_NOT_HEADERS = r"(?:Error|Exception|Warning|Interrupt|Exit)$"


@final
class Redactor:
    """Redaction with the default names and ``extra`` patterns (regular expressions)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.extra = tuple(extra)
        self.names = "|".join([DEFAULT_NAMES, *(f"(?:{p})" for p in self.extra)])

    def secret(self, name: str) -> bool:
        """Whether a value named ``name`` is a secret."""
        return re.search(self.names, name, re.I) is not None

    def text(self, text: str) -> str:
        """``text`` with the secrets it shows replaced by ``***``."""
        text = re.sub(_URL, lambda found: self._url(found.group()), text)
        text = re.sub(_ASSIGNMENT, self._pair("name", "value", "="), text)
        text = re.sub(_QUOTED_KEY, self._quoted, text)
        return re.sub(_HEADER, self._header, text)

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like ``value`` with its secrets redacted: the values of secret
        keys whole, and every string as :meth:`text`."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                key: MASK if isinstance(key, str) and self.secret(key) else self.data(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self.data(item) for item in value)
        return value

    def _url(self, url: str) -> str:
        url = re.sub(_USERINFO, lambda found: found["scheme"] + MASK + "@", url)
        head, mark, query = url.partition("?")
        if not mark:
            return url
        return head + mark + re.sub(_PARAMETER, self._pair("name", "value", "="), query)

    def _pair(self, name: str, value: str, sep: str) -> Any:
        def replace(found: re.Match[str]) -> str:
            if not found[value] or not self.secret(found[name]):
                return found.group()
            return f"{found[name]}{sep}{MASK}"

        return replace

    def _quoted(self, found: re.Match[str]) -> str:
        if not self.secret(found["name"]):
            return found.group()
        value = found["value"]
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{found['key']}{quote}{MASK}{quote}"

    def _header(self, found: re.Match[str]) -> str:
        name = found["name"]
        if not self.secret(name) or re.search(_NOT_HEADERS, name):
            return found.group()
        return found["head"] + MASK


def check(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a pattern of names to redact, or None when it can."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        return f"not a regular expression ({error})"
    if compiled.search(""):
        return "it matches every name (even an empty one)"
    return None


_active = Redactor()


def activate(redactor: Redactor) -> Redactor:
    """Make ``redactor`` the one :func:`redact` uses; return the one it replaces."""
    global _active
    previous, _active = _active, redactor
    return previous


def redact(value: Any) -> Any:
    """A redacted copy of a JSON-like value (a string, a mapping, a list...)."""
    return _active.data(value)


def redact_text(text: str) -> str:
    return _active.text(text)


def redact_in_place(mapping: MutableMapping[str, Any]) -> None:
    """Redact ``mapping`` itself, for those who hold it (a journal, an exception's)."""
    redacted = _active.data(mapping)
    mapping.clear()
    mapping.update(redacted)
