"""Replays the API transcript recorded from Toxiproxy 2.12 and compares every answer.

The 52 calls run once per server, in order (each step depends on the ones before), and
each step is then checked by its own test. The same replay runs against the real Go server
too, which checks the replay harness itself. Rules (from ../shared/conformance/README.md):
ports are compared as ``127.0.0.1:<PORT>``, the version string and Go's ``"Logger": {}``
are ignored, the wording after ``bad request body: `` is free, and the embedded server
refuses toxicity outside 0..1 with a 400, so those two toxics are absent from later lists.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..servers import CONFORMANCE, ApiServer

TRANSCRIPT_NAME = "toxiproxy-2.12-api-transcript.json"
PLACEHOLDER = "127.0.0.1:<PORT>"
#: Every real port on loopback (``127.0.0.1:0`` is a request for a port, kept as it is).
PORT = re.compile(r"127\.0\.0\.1:[1-9][0-9]*")
BAD_JSON_STEPS = frozenset({"create-bad-json", "toxic-bad-json", "populate-bad-json"})
BAD_JSON_PREFIX = "bad request body: "
#: Steps whose out-of-range toxicity the embedded server refuses, and the toxic each names.
REFUSED_TOXICITY = {"toxic-neg-toxicity": "neg", "toxic-big-toxicity": "big"}
NON_JSON = "<non-json>"


def _load_steps() -> list[dict[str, Any]]:
    path = CONFORMANCE / TRANSCRIPT_NAME
    steps: list[dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else []
    return steps


STEPS = {step["step"]: step for step in _load_steps()}
KINDS = ["embedded", pytest.param("real", marks=pytest.mark.realserver)]


@dataclass(frozen=True)
class Answer:
    """What a server answered to one step (status -1: the request itself failed)."""

    status: int
    text: str


# -- replaying --------------------------------------------------------------------------------


def request_body(step: dict[str, Any], port: int) -> bytes | None:
    """The step's body with ``<PORT>`` filled in; raw strings (malformed JSON) go as they are."""
    raw = step["request"]
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else json.dumps(raw)
    return text.replace("<PORT>", str(port)).encode()


def replay(server: ApiServer, steps: list[dict[str, Any]]) -> dict[str, Answer]:
    """Run every step in order against an emptied server, with one listening upstream whose
    port fills every ``<PORT>`` (it is bound, so it also serves ``create-listen-in-use``)."""
    server.clear()
    answers: dict[str, Answer] = {}
    with socket.create_server(("127.0.0.1", 0)) as upstream, server.client() as http:
        port = upstream.getsockname()[1]
        try:
            for step in steps:
                answers[step["step"]] = send(http, step, port)
        finally:
            server.clear()
    return answers


def send(http: httpx.Client, step: dict[str, Any], port: int) -> Answer:
    try:
        response = http.request(step["method"], step["path"], content=request_body(step, port))
    except httpx.HTTPError as error:
        return Answer(-1, f"{type(error).__name__}: {error}")
    return Answer(response.status_code, response.text)


# -- comparing --------------------------------------------------------------------------------


def normalize(value: Any) -> Any:
    """Drop Go's ``Logger`` artefact and put ``<PORT>`` in place of every real port."""
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items() if key != "Logger"}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        return PORT.sub(PLACEHOLDER, value)
    return value


def without_refused_toxics(value: Any) -> Any:
    """An expected body minus the toxics the embedded server refused to create."""
    refused = set(REFUSED_TOXICITY.values())
    if isinstance(value, list):
        return [without_refused_toxics(item) for item in value if not _is_refused(item, refused)]
    if isinstance(value, dict):
        return {key: without_refused_toxics(item) for key, item in value.items()}
    return value


def _is_refused(item: Any, refused: set[str]) -> bool:
    return isinstance(item, dict) and "type" in item and item.get("name") in refused


def expectation(step: dict[str, Any], kind: str) -> tuple[int, Any]:
    """The status and normalized body ``kind`` must answer to ``step``."""
    body = normalize(step["response"])
    if kind == "embedded":
        if step["step"] in REFUSED_TOXICITY:
            return 400, None
        body = without_refused_toxics(body)
    return step["status"], body


def mismatches(step: dict[str, Any], answer: Answer, kind: str) -> list[str]:
    """Everything in ``answer`` that breaks the transcript's rules; empty if it conforms."""
    status, expected = expectation(step, kind)
    problems = []
    if answer.status != status:
        problems.append(f"status {answer.status}, expected {status}")
    problems.extend(_body_problems(step["step"], kind, expected, answer.text))
    return problems


def _body_problems(name: str, kind: str, expected: Any, text: str) -> list[str]:
    if expected is None and not (kind == "embedded" and name in REFUSED_TOXICITY):
        return [] if text == "" else [f"expected an empty body, got {text!r}"]
    if isinstance(expected, dict) and NON_JSON in expected:
        wanted = expected[NON_JSON]
        return [] if text.rstrip("\n") == wanted else [f"body {text!r}, expected {wanted!r}"]
    try:
        actual = normalize(json.loads(text))
    except ValueError:
        return [f"body is not JSON: {text!r}"]
    if kind == "embedded" and name in REFUSED_TOXICITY:
        return _refused_toxicity_problems(actual)
    if name == "version":
        ok = isinstance(actual, dict) and isinstance(actual.get("version"), str)
        return [] if ok else [f"expected {{'version': <string>}}, got {actual!r}"]
    if name in BAD_JSON_STEPS:
        error = actual.get("error") if isinstance(actual, dict) else None
        if not (isinstance(error, str) and error.startswith(BAD_JSON_PREFIX)):
            return [f"error {error!r} does not start with {BAD_JSON_PREFIX!r}"]
        expected = {**expected, "error": error}
    return [] if actual == expected else [f"body {actual!r}\n   expected {expected!r}"]


def _refused_toxicity_problems(actual: Any) -> list[str]:
    """Our deliberate difference: a 400 whose message names toxicity and its range."""
    error = actual.get("error") if isinstance(actual, dict) else None
    clear = isinstance(error, str) and "toxicity" in error and "0" in error and "1" in error
    problems = [] if clear else [f"expected a clear toxicity error, got {actual!r}"]
    if not isinstance(actual, dict) or actual.get("status") != 400:
        problems.append(f"expected status 400 in the body, got {actual!r}")
    return problems


# -- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replays() -> dict[str, dict[str, Answer]]:
    """Answers per server kind, filled by the first test that needs them."""
    return {}


@pytest.fixture(params=KINDS)
def answers(
    request: pytest.FixtureRequest, conformance: Path, replays: dict[str, dict[str, Answer]]
) -> Iterator[tuple[str, dict[str, Answer]]]:
    kind: str = request.param
    if kind not in replays:
        server: ApiServer = request.getfixturevalue(f"{kind}_server")
        steps = json.loads((conformance / TRANSCRIPT_NAME).read_text())
        replays[kind] = replay(server, steps)
    yield kind, replays[kind]


@pytest.mark.parametrize("name", list(STEPS) or ["<transcript missing>"])
def test_step_matches_toxiproxy(name: str, answers: tuple[str, dict[str, Answer]]) -> None:
    kind, replayed = answers
    step = STEPS[name]
    answer = replayed[name]
    problems = mismatches(step, answer, kind)
    where = f"{step['method']} {step['path']} on the {kind} server"
    assert not problems, f"step {name} ({where}):\n - " + "\n - ".join(problems)


def test_the_comparison_catches_differences(conformance: Path) -> None:
    """The checker must fail wrong answers, or the replay would prove nothing."""
    create = STEPS["create"]
    good_body = json.dumps(create["response"]).replace("<PORT>", "4242")
    assert mismatches(create, Answer(201, good_body), "real") == []
    assert mismatches(create, Answer(200, good_body), "real")
    renamed = good_body.replace('"redis"', '"other"')
    assert mismatches(create, Answer(201, renamed), "real")
    assert mismatches(STEPS["unknown-route"], Answer(404, "not found"), "embedded")
    assert mismatches(STEPS["delete"], Answer(204, "{}"), "embedded")
    bad_json = STEPS["create-bad-json"]
    assert mismatches(bad_json, Answer(400, '{"error":"oops","status":400}'), "embedded")
    listed = STEPS["toxics-list"]
    full_list = json.dumps(listed["response"])
    assert mismatches(listed, Answer(200, full_list), "real") == []
    assert mismatches(listed, Answer(200, full_list), "embedded"), "neg/big must be absent"
