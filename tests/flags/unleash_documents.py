"""Seeded random Unleash documents and contexts, for the differential test against UnleashClient.

Every operator (with inversion and case folding), every built-in strategy, segments (one
missing), dependencies (missing parents, parents with parents, required variants, parents
required off), feature and strategy variants with payloads, overrides and stickiness, and
values Unleash parses and refuses on both sides of a constraint. Contexts always carry a
userId or a sessionId so that no answer is left to Unleash's random fallback.
"""

from __future__ import annotations

import random
from typing import Any

NUMBERS = [
    "5",
    "5.0",
    "-3",
    "1e3",
    "1E3",
    "+7",
    ".5",
    "5.",
    "1_000",
    " 5",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "0x10",
    "",
    "abc",
    "1,000",
    "1e400",
    "-0",
    "0",
    "10",
    "2.5",
    "1000",
]
DATES = [
    "2024-06-01T00:00:00Z",
    "2024-06-01T00:00:00.000Z",
    "2024-06-01T00:00:00.123456Z",
    "2024-06-01 00:00:00Z",
    "2024-06-01t00:00:00z",
    "2024-06-01T02:00:00+02:00",
    "2024-06-01T00:00:00+0200",
    "2024-06-01T00:00:00",
    "2024-06-01",
    " 2024-06-01T00:00:00Z",
    "2024-06-01T00:00:00Z ",
    "2024-02-30T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "2024-06-01T00:00:00 UTC",
    "2024-06-01T00:00:00+24:00",
    "2023-01-01T00:00:00.5-05:30",
    "+2024-06-01T00:00:00Z",
    "2024- 06-01T00:00:00Z",
    "24-6-1T0:0:0Z",
    "2025-01-01T00:00:00Z",
    "1999-12-31T23:59:59.999Z",
    "2024-06-01T00:00:00.1Z",
    "2024-01-01T00:00:00.000+00:00",
]
VERSIONS = [
    "1.2.3",
    "1.2.3-rc.1",
    "1.2.3-rc.10",
    "1.2.3-rc.9",
    "1.2.3+build",
    "v1.2.3",
    "01.2.3",
    "1.2.3-01",
    "1.2.3-0a",
    "1.2",
    "1.2.3.4",
    "1.10.0",
    "2.0.0",
    "2.0.0-alpha",
    "2.0.0-alpha.beta",
    "0.0.1",
    " 1.2.3",
    "1.2.3-beta_1",
    "99999999999999999999.0.0",
    "1.0.0-1",
    "1.0.0-a",
]
STRINGS = [
    "hello",
    "Hello",
    "HELLO",
    "help",
    "shell",
    "hello\n",
    "é",
    "ÉCOLE",
    "école",
    "",
    'a"b',
    "a\\b",
    "x y",
    "u1",
    "u2",
    "pro",
]
ADDRESSES = [
    "10.1.2.3",
    "10.0.0.1",
    "11.0.0.1",
    "192.168.1.1",
    "2001:db8::1",
    "::1",
    "bogus",
    "010.0.0.1",
    " 10.0.0.1",
    "::ffff:10.0.0.1",
    "fe80::1%eth0",
    "10.0.0.1/32",
]
NETWORKS = [
    "10.0.0.0/8",
    "10.0.0.1",
    "2001:db8::/32",
    "192.168.0.0/16",
    "bogus",
    "0.0.0.0/0",
    "10.0.0.0/33",
    "::ffff:10.0.0.0/104",
    "10.0.0.5/8",
]
PATTERNS = [
    "^h.l+o$",
    "ell",
    "^HE",
    "L{2}",
    "(?i)^hello$",
    "^\\d+$",
    "^[a-z]+$",
    "a(?=b)",
    "(a)\\1",
    "\\bhel",
    "^$",
    "",
    "x|y",
    "hello\\z",
    "[",
    "é",
    "^\\w+$",
    "o$",
    "^(?:he|sh)",
    "[^a-z]",
    "\\.",
    "1\\.2\\.\\d+",
    "^[[:alpha:]]+$",
    "(?m)^hello$",
    "^(?i)hel",
    "(?s)l.o",
]

ORDERED = {
    "NUM": (["NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"], "age", NUMBERS),
    "DATE": (["DATE_AFTER", "DATE_BEFORE"], "when", DATES),
    "SEMVER": (
        ["SEMVER_EQ", "SEMVER_GT", "SEMVER_GTE", "SEMVER_LT", "SEMVER_LTE"],
        "version",
        VERSIONS,
    ),
}
LISTED = ["IN", "NOT_IN", "STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"]
FIELDS = ["userId", "sessionId", "environment", "appName", "plan", "email", "nothere"]


def _some(rng: random.Random, pool: list[str], most: int) -> list[str]:
    return rng.sample(pool, rng.randint(0, most))


def _ordered_value(rng: random.Random, pool: list[str]) -> str:
    """A constraint value, most often of the operator's own family, sometimes of another."""
    value = rng.choice(pool if rng.random() < 0.7 else NUMBERS + DATES + VERSIONS)
    return value if value.strip(" \t") == value or rng.random() < 0.5 else value.strip()


def constraint(rng: random.Random) -> dict[str, Any]:
    """One constraint over any operator."""
    roll = rng.random()
    result: dict[str, Any]
    if roll < 0.45:
        family = rng.choice(list(ORDERED))
        operators, field, pool = ORDERED[family]
        result = {
            "contextName": rng.choice([field, field, "nothere"]),
            "operator": rng.choice(operators),
            "value": _ordered_value(rng, pool),
        }
        if field == "when" and rng.random() < 0.2:
            result["contextName"] = "currentTime"
    elif roll < 0.75:
        strings = [s for s in STRINGS + NUMBERS if not s.endswith("\\")]
        result = {
            "contextName": rng.choice(FIELDS),
            "operator": rng.choice(LISTED),
            "values": _some(rng, strings, 3),
        }
    elif roll < 0.87:
        patterns = _some(rng, PATTERNS, 2)
        result = {
            "contextName": rng.choice(["email", "plan", "version", "nothere"]),
            "operator": "REGEX",
        }
        if rng.random() < 0.6 and patterns:
            result["value"] = patterns[0]
        if rng.random() < 0.5:
            result["values"] = patterns
    elif roll < 0.97:
        result = {
            "contextName": rng.choice(["remoteAddress", "ip", "nothere"]),
            "operator": "IN_CIDR",
            "values": rng.sample(NETWORKS, rng.randint(1, 3)),
        }
    else:
        result = {"contextName": "plan", "operator": "STR_MATCHES", "values": ["pro"]}
    if rng.random() < 0.3:
        result["inverted"] = True
    if rng.random() < 0.3:
        result["caseInsensitive"] = True
    return result


def _variants(rng: random.Random, payloads: bool = True) -> list[dict[str, Any]]:
    # a field every context has: without it Unleash hashes a random id
    stickiness = rng.choice(["default", "environment", "plan", None])
    variants = []
    for index in range(rng.randint(0, 3)):
        variant: dict[str, Any] = {"name": f"v{index}", "weight": rng.choice([0, 1, 33, 500])}
        if stickiness:
            variant["stickiness"] = stickiness
        if payloads and rng.random() < 0.5:
            variant["payload"] = rng.choice(
                [
                    {"type": "string", "value": f"p{index}"},
                    {"type": "number", "value": "5"},
                    {"type": "json", "value": '{"n": 1}'},
                ]
            )
        if rng.random() < 0.2:
            variant["overrides"] = [{"contextName": "userId", "values": ["u1", "u7"]}]
        variants.append(variant)
    return variants


def strategy(rng: random.Random) -> dict[str, Any]:
    """One strategy, with constraints, segments and variants sometimes."""
    kind = rng.choice(
        [
            "default",
            "flexibleRollout",
            "flexibleRollout",
            "userWithId",
            "gradualRolloutUserId",
            "gradualRolloutSessionId",
            "remoteAddress",
            "gradualRolloutRandom",
            "custom",
        ]
    )
    params: dict[str, str] = {}
    if kind == "flexibleRollout":
        stickiness = rng.choice([None, "default", "userId", "sessionId", "plan", "random"])
        rollouts = (
            ["0", "100"]
            if stickiness == "random"
            else ["0", "10", "50", "100", "150", "abc", " 10", "+20"]
        )
        if rng.random() < 0.95:
            params["rollout"] = rng.choice(rollouts)
        if stickiness:
            params["stickiness"] = stickiness
        group = rng.choice([None, "g1", "", "shared"])
        if group is not None:
            params["groupId"] = group
    elif kind in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        params["percentage"] = rng.choice(["0", "30", "100", "x"])
        if rng.random() < 0.8:
            params["groupId"] = rng.choice(["g1", "g2"])
    elif kind == "gradualRolloutRandom":
        params["percentage"] = rng.choice(["0", "100"])
    elif kind == "userWithId":
        params["userIds"] = rng.choice(["u1,u2", "u3, u4 ,u1", "", "u5,,u6"])
    elif kind == "remoteAddress":
        params["IPs"] = rng.choice(["10.0.0.0/8", "192.168.1.1, 2001:db8::/32", "bogus, ::1"])
    result: dict[str, Any] = {"name": kind, "parameters": params}
    if rng.random() < 0.5:
        result["constraints"] = [constraint(rng) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.25:
        result["segments"] = rng.sample([1, 2, 3, 404], rng.randint(1, 2))
    if rng.random() < 0.25 and params.get("stickiness") != "random":
        result["variants"] = _variants(rng)  # hashed on the strategy's stickiness
    return result


def document(rng: random.Random, features: int) -> dict[str, Any]:
    """A whole document: segments 1..3 and ``features`` features named f0, f1, ..."""
    segments = [
        {"id": i, "constraints": [constraint(rng) for _ in range(rng.randint(0, 2))]}
        for i in (1, 2, 3)
    ]
    names = [f"f{i}" for i in range(features)]
    result = []
    for name in names:
        feature: dict[str, Any] = {
            "name": name,
            "enabled": rng.random() < 0.85,
            "strategies": [strategy(rng) for _ in range(rng.choice([0, 1, 1, 2, 3]))],
        }
        if rng.random() < 0.4:
            feature["variants"] = _variants(rng)
        if rng.random() < 0.25:
            parents = rng.sample([*names, "missing"], rng.randint(1, 2))
            feature["dependencies"] = [_dependency(rng, parent) for parent in parents]
        result.append(feature)
    return {"version": 2, "features": result, "segments": segments}


def _dependency(rng: random.Random, parent: str) -> dict[str, Any]:
    dependency: dict[str, Any] = {"feature": parent}
    roll = rng.random()
    if roll < 0.2:
        dependency["enabled"] = False
    elif roll < 0.5:
        dependency["variants"] = rng.sample(["v0", "v1", "disabled"], rng.randint(0, 2))
    return dependency


def context(rng: random.Random) -> dict[str, Any]:
    """A context with a userId or a sessionId (or both), and random other fields."""
    result: dict[str, Any] = {"environment": rng.choice(["prod", "dev"]), "appName": "app"}
    ids = rng.choice([("userId",), ("sessionId",), ("userId", "sessionId")])
    for field in ids:
        result[field] = rng.choice(["u1", "u2", "u7", "42", str(rng.randint(0, 10_000))])
    if rng.random() < 0.7:
        result["remoteAddress"] = rng.choice(ADDRESSES)
    if rng.random() < 0.3:
        result["currentTime"] = rng.choice(DATES)
    properties = {}
    for field, pool in (
        ("age", NUMBERS),
        ("when", DATES),
        ("version", VERSIONS),
        ("plan", STRINGS),
        ("email", STRINGS),
        ("ip", ADDRESSES),
    ):
        if rng.random() < 0.75 or field == "plan":
            properties[field] = rng.choice(pool)
    result["properties"] = properties
    return result
