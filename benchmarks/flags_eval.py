"""Flag evaluations per second (issues 8 and 18): ``FlagStore.is_enabled`` against
UnleashClient and OpenFeature's in-memory provider and our OpenFeature provider, in the same
run, on the same flag and the same contexts.

The flag: one Unleash feature-toggle document, a 10% ``flexibleRollout`` with stickiness
``userId`` and a ``groupId``. The contexts: 100,000 user ids (``"0"`` ... ``"99999"``), one
context per id, built before timing in each contender's own shape. Rows:

- the bare bucket computation, ``mmh3.hash(f"{groupId}:{id}", 0, False) % 100 + 1 <= 10``,
  on prebuilt keys and with the key built per call: the floor any exact Unleash bucketing
  pays (the store must build the key from the context on every call);
- ``FlagStore.from_unleash(doc).is_enabled(name, {"userId": id})``;
- ``UnleashClient`` (the reference version 6.9.1) bootstrapped offline from the same
  document: a ``FileCache`` in a temporary directory, ``bootstrap_from_dict``,
  ``disable_metrics``, ``disable_registration`` and ``initialize_client(fetch_toggles=False)``
  (its offline connector reads the cache only). Its URL points at a closed loopback port, and
  ``socket.socket.connect`` is wrapped for the whole time the client lives, refusing any
  connection that is not to loopback and counting the rest: the run prints how many were
  tried (none is expected);
- OpenFeature's ``InMemoryProvider`` through an OpenFeature client,
  ``client.get_boolean_value(name, False, EvaluationContext(targeting_key=id))``: the flag
  there is static (the provider has no targeting), so this row is the cost of OpenFeature's
  machinery alone;
- our provider, ``pytest_chaos.flags.openfeature.StoreProvider(store)`` on the same store,
  through an OpenFeature client by the same call path and the same ``EvaluationContext``
  objects as the in-memory row;
- the mixed flag, for the store and for UnleashClient: a 50% rollout (same groupId) behind
  one constraint of each newer operator family (``SEMVER_GTE``, a case-insensitive
  ``REGEX``, ``IN_CIDR``, ``NUM_GTE``, ``DATE_AFTER``) and a dependency on a parent flag,
  over contexts whose custom fields fail each constraint for some users; the first
  ``--mixed-users`` contexts (default 20,000) are timed, all are compared.

Each OpenFeature provider is set for a domain of its own (``set_provider(provider,
domain)``, ``get_client(domain)``), and ``api.shutdown()`` resets OpenFeature's global
state at the end. The two OpenFeature rows time the first ``--openfeature-users`` contexts
(default 50,000, the same ones for both): at ~10 us a call, passes over all 100,000 would
add ~8 s to the run.

Exactness: our store's answer for each of the 100,000 users is compared with UnleashClient's
answer for the same user, and our provider's answer through the OpenFeature client (all
100,000 users) with the store's ``is_enabled``; the run prints both numbers of
disagreements.

Every batch is one pass over the contender's contexts; in each round every contender runs
one batch, the order rotating, so machine noise spreads over all of them. Figures are medians
over rounds, with the garbage collector off during a batch, as ``timeit`` does. The run ends
with the share of the machine's CPU that other processes used meanwhile (Linux).

Targets (exit code 1 when missed): ``is_enabled`` >= 1,000,000 evaluations/s; 0
disagreements with UnleashClient; through OpenFeature, our provider's cost per call (median
ns) no more than 1.2x the in-memory provider's; 0 disagreements between our provider
and ``is_enabled``; on the mixed flag, at least 5x UnleashClient's rate and 0
disagreements with it.

    python3 benchmarks/flags_eval.py [--quick] [--rounds 7] [--users 100000]
                                     [--openfeature-users 50000] [--mixed-users 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mmh3
from openfeature import api as openfeature_api
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from UnleashClient import UnleashClient
from UnleashClient.cache import FileCache

from pytest_chaos.flags.openfeature import StoreProvider
from pytest_chaos.flags.store import FlagStore

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import CpuMeter, no_gc

FLAG = "checkout-rollout"
GROUP = "checkout"
ROLLOUT = 10
TARGET_STORE_PER_S = 1_000_000.0
OPENFEATURE_TARGET_RATIO = 1.2
MIXED_TARGET_RATIO = 5.0
UNLEASH_URL = "http://127.0.0.1:9/api"  # never contacted: registration, metrics, fetching off

DOCUMENT: dict[str, Any] = {
    "version": 1,
    "features": [
        {
            "name": FLAG,
            "type": "release",
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {
                        "rollout": str(ROLLOUT),
                        "stickiness": "userId",
                        "groupId": GROUP,
                    },
                    "constraints": [],
                }
            ],
            "variants": [],
        },
        {"name": "checkout-parent", "enabled": True, "strategies": [{"name": "default"}]},
    ],
}

MIXED = "checkout-mixed"
"""The same rollout behind one constraint of each new operator family and a parent."""

DOCUMENT["features"].append(
    {
        "name": MIXED,
        "type": "release",
        "enabled": True,
        "dependencies": [{"feature": "checkout-parent"}],
        "strategies": [
            {
                "name": "flexibleRollout",
                "parameters": {"rollout": "50", "stickiness": "userId", "groupId": GROUP},
                "constraints": [
                    {"contextName": "version", "operator": "SEMVER_GTE", "value": "1.2.0"},
                    {"contextName": "email", "operator": "REGEX", "value": "@example\\.(com|org)$",
                     "caseInsensitive": True},
                    {"contextName": "ip", "operator": "IN_CIDR", "values": ["10.0.0.0/8"]},
                    {"contextName": "age", "operator": "NUM_GTE", "value": "18"},
                    {"contextName": "signup", "operator": "DATE_AFTER",
                     "value": "2020-01-01T00:00:00.000Z"},
                ],
            }
        ],
    }
)  # fmt: skip


def mixed_properties(index: int) -> dict[str, str]:
    """Custom fields of user ``index`` for the mixed flag: each constraint fails for some."""
    return {
        "version": ("1.1.9", "1.2.0", "2.0.0-rc.1", "10.0.0")[index % 4],
        "email": (f"u{index}@example.com", f"u{index}@EXAMPLE.org", f"u{index}@else.net")[
            index % 3
        ],
        "ip": ("10.1.2.3", "192.168.0.9", "10.200.0.1", "::1", "10.0.0.7")[index % 5],
        "age": str(index % 60),
        "signup": f"{2015 + index % 10}-06-01T12:00:00Z",
    }


# -- no network ------------------------------------------------------------------------


class NetworkGuard:
    """Counts connections of ``socket.socket`` (which requests and urllib3 use) while active,
    refusing any that is not to loopback. It patches ``connect`` and ``connect_ex`` rather
    than installing an audit hook, which would also be called on every ctypes call that
    UnleashClient's engine makes, and so would slow the reference down."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def check(self, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        self.attempts.append(repr(address))
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost" or not isinstance(address, tuple)  # unix sockets
        if not loopback:
            raise ConnectionRefusedError(f"flags_eval: no network, refused {address!r}")

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        cls = socket.socket
        connect, connect_ex = cls.connect, cls.connect_ex
        guard = self

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            guard.check(address)
            connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(address)
            return connect_ex(sock, address)

        cls.connect = guarded_connect  # type: ignore[assignment, method-assign]
        cls.connect_ex = guarded_connect_ex  # type: ignore[assignment, method-assign]
        try:
            yield
        finally:
            cls.connect, cls.connect_ex = connect, connect_ex  # type: ignore[method-assign]


# -- the contenders ----------------------------------------------------------------------


@contextlib.contextmanager
def unleash_offline() -> Iterator[UnleashClient]:
    """UnleashClient bootstrapped from ``DOCUMENT``, offline; destroyed on the way out."""
    with tempfile.TemporaryDirectory(prefix="flags_eval-unleash-") as directory:
        cache = FileCache("flags-eval", directory=directory)
        cache.bootstrap_from_dict(DOCUMENT)
        client = UnleashClient(
            url=UNLEASH_URL,
            app_name="flags-eval",
            refresh_interval=3600,  # the offline connector re-reads the cache; not meanwhile
            disable_metrics=True,
            disable_registration=True,
            cache=cache,
        )
        client.initialize_client(fetch_toggles=False)
        try:
            yield client
        finally:
            client.destroy()


def openfeature_in_memory() -> Any:
    """An OpenFeature client on the in-memory provider holding ``FLAG`` (static, on)."""
    provider = InMemoryProvider(
        {FLAG: InMemoryFlag(default_variant="on", variants={"on": True, "off": False})}
    )
    openfeature_api.set_provider(provider, "flags-eval-in-memory")
    return openfeature_api.get_client("flags-eval-in-memory")


def openfeature_ours(store: FlagStore) -> Any:
    """An OpenFeature client on our provider, answering from ``store``."""
    openfeature_api.set_provider(StoreProvider(store), "flags-eval-ours")
    return openfeature_api.get_client("flags-eval-ours")


# -- timing loops ------------------------------------------------------------------------


def bucket_loop(keys: list[str]) -> Callable[[], float]:
    hash_ = mmh3.hash

    def run() -> float:
        clock = time.perf_counter_ns
        start = clock()
        for key in keys:
            hash_(key, 0, False) % 100 + 1 <= ROLLOUT  # noqa: B015 - computed, not used
        return (clock() - start) / len(keys)

    return run


def bucket_with_key_loop(ids: list[str]) -> Callable[[], float]:
    hash_ = mmh3.hash

    def run() -> float:
        clock = time.perf_counter_ns
        start = clock()
        for uid in ids:
            hash_(f"{GROUP}:{uid}", 0, False) % 100 + 1 <= ROLLOUT  # noqa: B015
        return (clock() - start) / len(ids)

    return run


def call_loop(
    evaluate: Callable[..., Any], contexts: list[Any], flag: str = FLAG
) -> Callable[[], float]:
    """ns per ``evaluate(flag, context)`` over every context."""

    def run() -> float:
        clock = time.perf_counter_ns
        start = clock()
        for context in contexts:
            evaluate(flag, context)
        return (clock() - start) / len(contexts)

    return run


def openfeature_loop(client: Any, contexts: list[EvaluationContext]) -> Callable[[], float]:
    get = client.get_boolean_value

    def run() -> float:
        clock = time.perf_counter_ns
        start = clock()
        for context in contexts:
            get(FLAG, False, context)
        return (clock() - start) / len(contexts)

    return run


# -- rounds and results ------------------------------------------------------------------


@dataclass
class Contender:
    label: str
    run: Callable[[], float]  # one batch: ns per evaluation
    samples: list[float]

    def timed(self) -> float:
        with no_gc():
            return self.run()

    @property
    def ns(self) -> float:
        return statistics.median(self.samples)

    @property
    def per_s(self) -> float:
        return 1e9 / self.ns


def measure(contenders: list[Contender], rounds: int) -> None:
    for contender in contenders:  # warm-up batch, not counted
        contender.timed()
    for round_ in range(rounds):
        shift = round_ % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            contender.samples.append(contender.timed())


def table(contenders: list[Contender], by_label: dict[str, Contender]) -> str:
    unleash = by_label["unleash"]
    in_memory = by_label["openfeature"]
    width = max(len(c.label) for c in contenders) + 2
    lines = [
        f"{'contender':<{width}}{'evals/s':>12}{'ns/eval':>10}{'min ns':>9}{'max ns':>9}"
        f"{'vs Unleash':>12}{'vs OF mem':>11}",
    ]
    for c in contenders:
        lines.append(
            f"{c.label:<{width}}{c.per_s:>12,.0f}{c.ns:>10.1f}{min(c.samples):>9.1f}"
            f"{max(c.samples):>9.1f}{unleash.ns / c.ns:>11.2f}x{in_memory.ns / c.ns:>10.2f}x"
        )
    lines.append(
        "(vs X: how many times faster than X per evaluation, X's median ns / this row's median ns)"
    )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7 (~15 s)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 7, quick 3)")
    parser.add_argument("--users", type=int, default=100_000, help="user ids (default 100000)")
    parser.add_argument(
        "--mixed-users",
        type=int,
        default=20_000,
        help="contexts timed by the two mixed-document rows, the first of --users (default 20000)",
    )
    parser.add_argument(
        "--openfeature-users",
        type=int,
        default=50_000,
        help="contexts timed by the two OpenFeature rows, the first of --users (default 50000)",
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 7)
    if min(args.rounds, args.users, args.openfeature_users, args.mixed_users) < 1:
        parser.error("--rounds, --users, --mixed-users and --openfeature-users must be 1 or more")
    args.openfeature_users = min(args.openfeature_users, args.users)
    args.mixed_users = min(args.mixed_users, args.users)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    meter = CpuMeter()
    guard = NetworkGuard()
    logging.getLogger("UnleashClient").setLevel(logging.ERROR)
    ids = [str(i) for i in range(args.users)]
    print(
        f"Python {sys.version.split()[0]}, mmh3 {version('mmh3')}, UnleashClient "
        f"{version('UnleashClient')} (yggdrasil-engine {version('yggdrasil-engine')}), "
        f"openfeature-sdk {version('openfeature-sdk')}; a {ROLLOUT}% flexibleRollout "
        f"(stickiness userId, groupId {GROUP!r}) over {len(ids):,} user ids; {args.rounds} "
        "rounds, order rotating, one pass over every user a batch (the OpenFeature rows: "
        f"the first {args.openfeature_users:,}); medians over rounds",
        flush=True,
    )

    store = FlagStore.from_unleash(DOCUMENT)
    keys = [f"{GROUP}:{uid}" for uid in ids]
    store_contexts = [{"userId": uid} for uid in ids]
    unleash_contexts = [{"userId": uid} for uid in ids]
    of_contexts = [EvaluationContext(targeting_key=uid) for uid in ids]
    of_timed = of_contexts[: args.openfeature_users]
    mixed_contexts = [
        {"userId": uid, "properties": mixed_properties(i)} for i, uid in enumerate(ids)
    ]
    mixed_timed = mixed_contexts[: args.mixed_users]

    try:
        with guard.active(), unleash_offline() as unleash:
            of_client = openfeature_in_memory()
            ours_client = openfeature_ours(store)
            ours = [store.is_enabled(FLAG, context) for context in store_contexts]
            theirs = [unleash.is_enabled(FLAG, context) for context in unleash_contexts]
            floor = [mmh3.hash(key, 0, False) % 100 + 1 <= ROLLOUT for key in keys]
            through = [ours_client.get_boolean_value(FLAG, False, c) for c in of_contexts]
            if not all(of_client.get_boolean_value(FLAG, False, c) for c in of_contexts[:100]):
                raise SystemExit("the in-memory provider does not answer True for the static flag")
            details = ours_client.get_boolean_details(FLAG, False, of_contexts[0])
            if details.error_code is not None or details.reason not in ("SPLIT", "DEFAULT"):
                raise SystemExit(f"our provider answered {details!r}")
            disagreements = sum(a != b for a, b in zip(ours, theirs, strict=True))
            floor_disagreements = sum(a != b for a, b in zip(floor, theirs, strict=True))
            of_disagreements = sum(a != b for a, b in zip(through, ours, strict=True))
            mixed_ours = [store.is_enabled(MIXED, context) for context in mixed_contexts]
            mixed_theirs = [unleash.is_enabled(MIXED, context) for context in mixed_contexts]
            mixed_disagreements = sum(a != b for a, b in zip(mixed_ours, mixed_theirs, strict=True))

            contenders = [
                Contender("bare mmh3 bucket (prebuilt keys)", bucket_loop(keys), []),
                Contender("bare mmh3 bucket (key built per call)", bucket_with_key_loop(ids), []),
                Contender("FlagStore.is_enabled", call_loop(store.is_enabled, store_contexts), []),
                Contender(
                    "UnleashClient.is_enabled (offline)",
                    call_loop(unleash.is_enabled, unleash_contexts),
                    [],
                ),
                Contender(
                    "OpenFeature InMemoryProvider (static)",
                    openfeature_loop(of_client, of_timed),
                    [],
                ),
                Contender(
                    "OpenFeature, our StoreProvider",
                    openfeature_loop(ours_client, of_timed),
                    [],
                ),
                Contender(
                    "FlagStore.is_enabled, mixed flag",
                    call_loop(store.is_enabled, mixed_timed, MIXED),
                    [],
                ),
                Contender(
                    "UnleashClient.is_enabled, mixed flag",
                    call_loop(unleash.is_enabled, mixed_timed, MIXED),
                    [],
                ),
            ]
            measure(contenders, args.rounds)
    finally:
        openfeature_api.shutdown()  # every provider shut down, OpenFeature's state reset
    by_label = {
        "store": contenders[2],
        "unleash": contenders[3],
        "openfeature": contenders[4],
        "ours": contenders[5],
        "mixed": contenders[6],
        "unleash mixed": contenders[7],
    }

    print(f"\n{table(contenders, by_label)}")
    print(
        f"\nexactness over {len(ids):,} users: FlagStore {sum(ours):,} on, UnleashClient "
        f"{sum(theirs):,} on, {disagreements} disagreements (the bare bucket formula: "
        f"{floor_disagreements})"
    )
    print(
        f"through OpenFeature over {len(ids):,} users: our provider {sum(through):,} on, "
        f"{of_disagreements} disagreements with FlagStore.is_enabled"
    )
    print(
        f"the mixed flag over {len(ids):,} users: FlagStore {sum(mixed_ours):,} on, "
        f"UnleashClient {sum(mixed_theirs):,} on, {mixed_disagreements} disagreements; "
        f"the store {by_label['unleash mixed'].ns / by_label['mixed'].ns:.1f}x UnleashClient"
    )
    print(f"network connections tried: {len(guard.attempts)} {guard.attempts or ''}".rstrip())

    store_rate = by_label["store"].per_s
    fast = store_rate >= TARGET_STORE_PER_S
    exact = disagreements == 0
    of_ns = by_label["openfeature"].ns
    ours_ns = by_label["ours"].ns
    ratio = ours_ns / of_ns
    cheap = ratio <= OPENFEATURE_TARGET_RATIO
    of_exact = of_disagreements == 0
    mixed_rate = by_label["mixed"].per_s
    mixed_ratio = by_label["unleash mixed"].ns / by_label["mixed"].ns
    mixed_fast = mixed_ratio >= MIXED_TARGET_RATIO
    mixed_exact = mixed_disagreements == 0
    print(
        "\ntargets:\n"
        f"  FlagStore.is_enabled >= {TARGET_STORE_PER_S:,.0f}/s      {store_rate:>12,.0f}/s "
        f"{'PASS' if fast else 'FAIL'}\n"
        f"  exact Unleash bucketing (0 disagreements)  {disagreements:>12} "
        f"{'PASS' if exact else 'FAIL'}\n"
        f"  through OpenFeature <= {OPENFEATURE_TARGET_RATIO}x the in-memory provider's cost "
        f"per call: {ours_ns:.0f} / {of_ns:.0f} ns = {ratio:.3f}x "
        f"{'PASS' if cheap else 'FAIL'}\n"
        f"  our provider = is_enabled (0 disagreements) {of_disagreements:>11} "
        f"{'PASS' if of_exact else 'FAIL'}\n"
        f"  mixed flag >= {MIXED_TARGET_RATIO:.0f}x UnleashClient's rate: {mixed_rate:,.0f}/s = "
        f"{mixed_ratio:.1f}x {'PASS' if mixed_fast else 'FAIL'}\n"
        f"  mixed flag = UnleashClient (0 disagreements) {mixed_disagreements:>10} "
        f"{'PASS' if mixed_exact else 'FAIL'}"
    )
    print(meter.summary())
    passed = fast and exact and cheap and of_exact and mixed_fast and mixed_exact
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
