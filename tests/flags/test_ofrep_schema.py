"""Schemathesis against the OFREP OpenAPI document, read in place from ../shared/conformance.

Every request Schemathesis derives from the schema (valid ones and broken ones) is sent
to a real server; answers must not be 5xx, must use documented status codes and content
types, and must have the fields the schema gives them. The schema's ``oneOf`` for a
successful evaluation cannot validate as written (``codeDefaultFlag`` has no required
field, so it matches beside any typed value, and an integer is also a number), so success
bodies are checked field by field instead of against the bare schema. Examples are few,
derandomized and without a database: the same requests on every run, in a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SPEC = Path(__file__).resolve().parents[2].parent / "shared/conformance/ofrep/openapi.yaml"
if not SPEC.is_file():
    pytest.skip(
        f"the OFREP OpenAPI document is not at {SPEC} (../shared/conformance is absent "
        "in this clone)",
        allow_module_level=True,
    )
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

from pytest_chaos.flags.ofrep import OfrepServer  # noqa: E402
from pytest_chaos.flags.store import FlagStore  # noqa: E402

schema = schemathesis.openapi.from_path(SPEC)

REASONS = {"STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"}
FAILURES = {"PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"}
FEATURES = [
    {"name": "discount-banner", "enabled": True, "strategies": [{"name": "default"}]},
    {"name": "off", "enabled": False},
    {
        "name": "rollout",
        "enabled": True,
        "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "50"}}],
    },
    {
        "name": "theme",
        "enabled": True,
        "variants": [
            {"name": "blue", "weight": 500, "payload": {"type": "string", "value": "#00f"}},
            {"name": "five", "weight": 300, "payload": {"type": "number", "value": "5"}},
            {"name": "cfg", "weight": 200, "payload": {"type": "json", "value": '{"a": 1}'}},
        ],
    },
]


@pytest.fixture(scope="module")
def server() -> Iterator[OfrepServer]:
    with OfrepServer(FlagStore.from_unleash({"features": FEATURES})) as running:
        yield running


def _success(flag: dict[str, Any]) -> None:
    assert isinstance(flag.get("key"), str), flag
    assert flag.get("reason") in REASONS, flag
    assert isinstance(flag.get("variant"), str), flag
    if "value" in flag:
        assert isinstance(flag["value"], bool | str | int | float | dict), flag
    for value in (flag.get("metadata") or {}).values():
        assert isinstance(value, bool | str | int | float), flag


def _failure(flag: dict[str, Any], codes: set[str], keyed: bool = True) -> None:
    assert flag.get("errorCode") in codes, flag
    assert isinstance(flag.get("errorDetails"), str), flag
    if keyed:
        assert isinstance(flag.get("key"), str), flag


def ofrep_fields(ctx: Any, response: Any, case: Any) -> bool:
    """The fields the schema gives each status, checked one by one."""
    status, bulk = response.status_code, case.path == "/ofrep/v1/evaluate/flags"
    if status == 304:
        assert bulk and not response.content and response.headers.get("etag")  # a list
        return True
    body = response.json()
    if status == 200 and bulk:
        assert isinstance(body.get("flags"), list), body
        for flag in body["flags"]:
            (
                _failure(flag, FAILURES | {"FLAG_NOT_FOUND"})
                if "errorCode" in flag
                else _success(flag)
            )
    elif status == 200:
        _success(body)
    elif status == 400:
        _failure(body, FAILURES, keyed=not bulk)
    elif status == 404:
        _failure(body, {"FLAG_NOT_FOUND"})
    elif status == 405:  # a method the schema does not have, asked on purpose
        assert case.method != "POST" and response.headers.get("allow") == ["POST"]
        assert isinstance(body.get("errorDetails"), str), body
    else:
        raise AssertionError(f"undocumented status {status}: {body}")
    return True


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_ofrep_conforms_to_its_openapi_document(case: Any, server: OfrepServer) -> None:
    case.call_and_validate(
        base_url=server.url,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_headers_conformance,
            checks.unsupported_method,
            checks.allow_header_conformance,
        ],
        additional_checks=[ofrep_fields],
    )
