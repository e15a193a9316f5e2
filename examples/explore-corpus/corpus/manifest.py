"""What the corpus plants and what it handles: the answer key an exploration is checked
against (by its tests and by ``benchmarks/explore.py``).

Each bug names its test, the services whose failure reveals it (two for the one only a
combination reveals), one run that reveals it and how that run ends. Every other
dependency of the corpus is handled: no run that breaks or hangs may blame it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

NETWORK = "tests/test_network.py"
IN_PROCESS = "tests/test_in_process.py"


@dataclass(frozen=True)
class Bug:
    number: int
    test: str
    services: frozenset[str]
    reveals: str
    outcome: str
    what: str


BUGS = (
    Bug(
        1,
        f"{NETWORK}::test_an_order_is_paid",
        frozenset({"inventory"}),
        "explore:link:inventory:blackhole",
        "hung",
        "orders calls inventory without a timeout",
    ),
    Bug(
        2,
        f"{IN_PROCESS}::test_a_payment_is_charged_once",
        frozenset({"payments"}),
        "explore:http:POST payments/charges:read-timeout",
        "broke",
        "checkout retries a charge without an idempotency key",
    ),
    Bug(
        3,
        f"{NETWORK}::test_a_profile_belongs_to_its_user",
        frozenset({"users"}),
        "explore:link:users:down",
        "broke",
        "the profile fallback serves another user's cached profile",
    ),
    Bug(
        4,
        f"{IN_PROCESS}::test_mail_is_sent",
        frozenset({"mailer"}),
        "explore:http:POST mailer/mail:connect-error",
        "hung",
        "the notifier retries an unreachable mailer for ever",
    ),
    Bug(
        5,
        f"{NETWORK}::test_the_catalog_lists_what_search_finds",
        frozenset({"search"}),
        "explore:link:search:down",
        "broke",
        "the catalog answers a search failure with 200 and no items",
    ),
    Bug(
        6,
        f"{IN_PROCESS}::test_the_quota_is_read",
        frozenset({"quota"}),
        "explore:http:GET quota/quota:429",
        "broke",
        "the quota client retries a 429 at once, whatever Retry-After says",
    ),
    Bug(
        7,
        f"{NETWORK}::test_a_balance_is_read",
        frozenset({"primary", "replica"}),
        "explore:link:primary:down+link:replica:down",
        "broke",
        "with both stores down, accounts answers a balance of 0",
    ),
)
#: Dependencies whose failures the corpus handles, by test, each with one run to show it.
HANDLED = (
    (f"{NETWORK}::test_an_order_is_paid", "payments", "explore:link:payments:blackhole"),
    (
        f"{NETWORK}::test_the_catalog_lists_what_search_finds",
        "pricing",
        "explore:link:pricing:truncated-body",
    ),
    (f"{NETWORK}::test_a_balance_is_read", "primary", "explore:link:primary:down"),
    (
        f"{IN_PROCESS}::test_a_payment_is_charged_once",
        "payments",
        "explore:http:POST payments/charges:503",
    ),
    (f"{IN_PROCESS}::test_mail_is_sent", "mailer", "explore:http:POST mailer/mail:500"),
    (f"{IN_PROCESS}::test_the_quota_is_read", "quota", "explore:http:GET quota/quota:503"),
)


def service(fault: Mapping[str, Any]) -> str:
    """The service a fault of ``summary.json`` hits: an endpoint's host, else its name."""
    name = str(fault["dependency"])
    if fault["kind"] == "http":
        return name.partition(" ")[2].split("/", 1)[0]
    return name


@dataclass
class Verdict:
    """An exploration checked against the corpus: the bugs it found and missed, and the
    runs that broke or hung that no bug explains (blaming what is handled)."""

    found: list[Bug]
    missed: list[Bug]
    unexplained: list[str]

    @property
    def exact(self) -> bool:
        return not self.missed and not self.unexplained


def check(runs: Iterable[Mapping[str, Any]]) -> Verdict:
    """Check the runs of an exploration's ``summary.json`` (``explore.tests[].runs``)."""
    problems = [run for run in runs if run["outcome"] in ("broke", "hung")]
    found = [bug for bug in BUGS if any(_explains(bug, run) for run in problems)]
    unexplained = [
        run["nodeid"] for run in problems if not any(_explains(bug, run) for bug in BUGS)
    ]
    return Verdict(found, [bug for bug in BUGS if bug not in found], unexplained)


def _explains(bug: Bug, run: Mapping[str, Any]) -> bool:
    """Whether ``bug`` explains a run that broke or hung: the run is its test's, and the
    services it failed include those the bug needs to show."""
    return str(run["test"]).endswith(bug.test) and bug.services <= {
        service(fault) for fault in run["faults"]
    }
