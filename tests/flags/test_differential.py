"""The store against UnleashClient 6.9.1 on seeded random documents and contexts.

UnleashClient evaluates with Unleash's own engine (Yggdrasil); here it is bootstrapped
offline from the same document (a ``FileCache`` in a temporary directory,
``bootstrap_from_dict``, ``initialize_client(fetch_toggles=False)``, metrics and
registration off, its URL a closed loopback port). Every (feature, context) pair is asked
of both, ``is_enabled`` and ``get_variant``: not one disagreement is allowed.
"""

from __future__ import annotations

import logging
import random
import socket
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_chaos.flags.operators import OPERATORS
from pytest_chaos.flags.store import FlagOffWarning, FlagStore
from tests.flags import unleash_documents

SEEDS = (18, 1018)
FEATURES = 110
CONTEXTS = 50
"""Two documents of 110 features, 50 contexts each: 11,000 pairs, each asked twice."""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def unleash_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A factory of offline UnleashClients, each destroyed at teardown."""
    pytest.importorskip("UnleashClient")
    # each panic of the engine (see below) would otherwise symbolize a Rust backtrace
    monkeypatch.setenv("RUST_BACKTRACE", "0")
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    # Unleash's engine panics on a variant list that weighs 0 and UnleashClient answers
    # the disabled variant, logging a traceback each time: silence both loggers
    for name in ("UnleashClient", "yggdrasil_engine"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    clients: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="pytest-chaos-differential-") as directory:

        def offline(document: dict[str, Any]) -> Any:
            cache = FileCache(f"differential-{len(clients)}", directory=directory)
            cache.bootstrap_from_dict(document)
            client = UnleashClient(
                url=f"http://127.0.0.1:{_closed_port()}",
                app_name="app",
                environment="prod",
                refresh_interval=3600,
                disable_metrics=True,
                disable_registration=True,
                cache=cache,
            )
            client.initialize_client(fetch_toggles=False)
            clients.append(client)
            return client

        try:
            yield offline
        finally:
            for client in clients:
                client.destroy()


PATTERNS = [
    "^cat$", "(regex", "^[^@]+@[^@]+$", "^user\\d{3}$", "^[[:alpha:]]+$", "\\bcat\\b",
    "^(foo|fo)$", "^(ab)?c$", "^a{2,4}$", "^a.*?b$", "^(?i)abc$", "^abc$", "(?m)^foo$",
    "^(?s)a.b$", "^(?=a)b$", "^(a)\\1$", "a(?i)b|c", "(x(?i)y|z)w", "(?i:ab)c$", "a(?-i)b",
    "(?i)a(?-i)b", "[[:digit:][:upper:]]+", "^[[:space:]]*$", "(?m)o$", "o$", "^$", "",
    "[a-c]{2}", "\\w+@\\w+\\.com", "(?s).", "^.$", "(?m)^b", "x*", "a|b|", "(?is)A.B",
    "[[:punct:]]", "[[:xdigit:]]{2}", "[[:word:]]+$", "\\d+\\.\\d+", "(a|ab)(c|bcd)(d*)",
    "^\\s+$", "[^[:alpha:]]",
]  # fmt: skip
"""Anchors, classes (ASCII ones too), flags set anywhere, lazy and bounded repetition,
and what Rust refuses (lookahead, backreferences, an unclosed group)."""
SUBJECTS = [
    "cat", "Cat", "a cat b", "concatenate", "test@example.com", "not-an-email", "user123",
    "user12", "AlphaBeta", "Alpha1", "foo", "fo", "f", "abc", "c", "ac", "aaaa", "a", "aaaaa",
    "a___b___b", "a___b___c", "AbC", "zAbCz", "x\nfoo\ny", "x\nfo\ny", "a\nb", "ab", "aa", "aB",
    "Ab", "AB", "xYw", "zw", "ABc", "ABC", "", " ", " \t\n", "foo\n", "o\n", "\n", "b\nc",
    "1.5", "ff", "ÉCOLE", "é", "a+b", "abcd", "x@y.com", "A\nB", "a\nB", "12AB",
]  # fmt: skip


def test_regex_matches_as_unleash_client(unleash_client: Any) -> None:
    """Every pattern, with and without caseInsensitive and inverted, on every subject."""
    features = []
    for index, (pattern, fold, inverted) in enumerate(
        (p, f, i) for p in PATTERNS for f in (False, True) for i in (False, True)
    ):
        constraint = {"contextName": "x", "operator": "REGEX", "value": pattern}
        constraint.update(caseInsensitive=fold, inverted=inverted)  # type: ignore[call-overload]
        strategy = {"name": "default", "constraints": [constraint]}
        features.append({"name": f"r{index}", "enabled": True, "strategies": [strategy]})
    document = {"version": 2, "features": features}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlagOffWarning)
        store = FlagStore.from_unleash(document)
    client = unleash_client(document)
    disagreements = [
        (feature["strategies"][0]["constraints"][0], subject)  # type: ignore[index]
        for feature in features
        for subject in SUBJECTS
        if store.is_enabled(feature["name"], {"properties": {"x": subject}})  # type: ignore[arg-type]  # a wrong type on purpose
        is not client.is_enabled(feature["name"], {"properties": {"x": subject}})
    ]
    assert disagreements == [], (len(disagreements), disagreements[:5])


def _operators(document: dict[str, Any]) -> set[str]:
    constraints = [c for segment in document["segments"] for c in segment["constraints"]]
    for feature in document["features"]:
        for strategy in feature["strategies"]:
            constraints += strategy.get("constraints", [])
    return {constraint["operator"] for constraint in constraints}


def _variant(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if value is not None}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_store_answers_as_unleash_client(seed: int, unleash_client: Any) -> None:
    rng = random.Random(seed)
    document = unleash_documents.document(rng, FEATURES)
    contexts = [unleash_documents.context(rng) for _ in range(CONTEXTS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlagOffWarning)
        store = FlagStore.from_unleash(document)
    client = unleash_client(document)
    names = [feature["name"] for feature in document["features"]]
    disagreements = []
    on = 0
    for context in contexts:
        for name in names:
            ours, theirs = store.is_enabled(name, context), client.is_enabled(name, context)
            on += theirs
            if ours is not theirs:
                disagreements.append(("is_enabled", name, context, ours, theirs))
            our_variant = store.get_variant(name, context)
            their_variant = _variant(client.get_variant(name, context))
            if our_variant != their_variant:
                disagreements.append(("get_variant", name, context, our_variant, their_variant))  # type: ignore[arg-type]  # a wrong type on purpose
    assert disagreements == [], (len(disagreements), disagreements[:5])
    assert _operators(document) >= OPERATORS  # every operator was in the mix
    # the documents are varied enough to matter: neither all on nor all off
    assert 0.1 < on / (len(names) * len(contexts)) < 0.9
