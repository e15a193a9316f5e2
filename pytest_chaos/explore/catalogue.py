"""The catalogue: each way a dependency of each kind can fail, as the explorer applies it.

Every fault lasts from the start of the test's body (after its fixtures, so services
start unharmed) to its end, and strikes every matching connection, request or call: an
outage, not a blip. A link that carried HTTP in the baseline also gets the HTTP faults of
the embedded proxy; a call site gets the exceptions registered for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from pytest_chaos.explore.recording import Usage


@final
@dataclass(frozen=True)
class FaultKind:
    """One entry: its id in cell ids, what it applies to, and what it does."""

    id: str
    applies_to: str  # "link", "http-link" (a link that carried HTTP), "http", "process"
    summary: str


#: Every fault but a call site's exceptions, in the order the matrix shows them.
CATALOGUE = (
    FaultKind("down", "link", "the proxy is disabled: connections are refused"),
    FaultKind(
        "blackhole",
        "link",
        "nothing gets through either way, not even the server's close: callers wait",
    ),
    FaultKind("latency", "link", "every answer is delayed by the explore latency"),
    FaultKind("reset", "link", "connections are reset (TCP RST) as soon as data flows"),
    FaultKind("slow-close", "link", "closing a connection takes the explore latency"),
    FaultKind("truncated", "link", "each connection's answers are cut after 32 bytes"),
    FaultKind("http-500", "http-link", "every request is answered 500 by the proxy"),
    FaultKind("http-503", "http-link", "every request is answered 503 by the proxy"),
    FaultKind("http-429", "http-link", "every request is answered 429, Retry-After: 1"),
    FaultKind("slow-head", "http-link", "response heads are delayed by the explore latency"),
    FaultKind("truncated-body", "http-link", "response bodies are cut after their first byte"),
    FaultKind("500", "http", "the request is answered 500 without reaching the server"),
    FaultKind("503", "http", "the request is answered 503 without reaching the server"),
    FaultKind("429", "http", "the request is answered 429 with Retry-After: 1"),
    FaultKind("connect-error", "http", "the connection is refused (httpx.ConnectError)"),
    FaultKind(
        "read-timeout",
        "http",
        "the request reaches the server, which acts on it, and its answer is lost "
        "(httpx.ReadTimeout)",
    ),
    FaultKind("truncated-body", "http", "the response body is cut short"),
    FaultKind("kill", "process", "the process is killed (SIGKILL) and stays down"),
    FaultKind("pause", "process", "the process is frozen (SIGSTOP): it accepts, never answers"),
)
#: What ``truncated`` lets through per connection before it closes it.
TRUNCATED_BYTES = 32
#: What ``truncated-body`` lets through of a body on a link.
TRUNCATED_BODY_BYTES = 1
#: The ``Retry-After`` of the 429 faults, in seconds.
RETRY_AFTER_S = 1


def kinds_for(applies_to: str) -> tuple[FaultKind, ...]:
    return tuple(kind for kind in CATALOGUE if kind.applies_to == applies_to)


def faults_for(usage: Usage) -> list[str]:
    """The ids of the faults that fit ``usage``'s dependency, in catalogue order."""
    kind = usage.dependency.kind
    if kind == "call":
        return list(usage.errors)
    groups = [kind]
    if kind == "link" and usage.protocol == "http":
        groups.append("http-link")
    return [fault.id for fault in CATALOGUE if fault.applies_to in groups]


def describe(kind: str, fault: str, protocol: str | None = None) -> str:
    """What ``fault`` does to a dependency of ``kind``, for reports."""
    if kind == "call":
        return f"every call raises {fault}"
    groups = (kind, "http-link") if kind == "link" else (kind,)
    for entry in CATALOGUE:
        if entry.id == fault and entry.applies_to in groups:
            return entry.summary
    return fault


def known(kind: str, fault: str) -> bool:
    """Whether ``fault`` is in the catalogue for ``kind`` (a call site's labels are
    checked against its registration when the run starts)."""
    if kind == "call":
        return bool(fault)
    groups = (kind, "http-link") if kind == "link" else (kind,)
    return any(entry.id == fault and entry.applies_to in groups for entry in CATALOGUE)
