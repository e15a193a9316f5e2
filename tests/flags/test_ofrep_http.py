"""The OFREP server's HTTP rules over real loopback HTTP: ETags per RFC 9110, ``Allow`` on
405, JSON 413, no random answers, and the optional CORS and bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pytest_chaos.flags.ofrep import OfrepServer, if_none_match
from pytest_chaos.flags.store import FlagStore

EVAL = "/ofrep/v1/evaluate/flags"


@pytest.fixture
def store() -> FlagStore:
    rollout = {"rollout": "30", "stickiness": "default", "groupId": "canary"}
    return FlagStore.from_unleash(
        {
            "features": [
                {"name": "everyone", "enabled": True, "strategies": [{"name": "default"}]},
                {
                    "name": "canary",
                    "enabled": True,
                    "strategies": [{"name": "flexibleRollout", "parameters": rollout}],
                },
            ]
        }
    )


@pytest.fixture
def http(store: FlagStore) -> Iterator[httpx.Client]:
    with OfrepServer(store) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def _bulk(http: httpx.Client, **headers: str) -> httpx.Response:
    return http.post(EVAL, json={"context": {"targetingKey": "u1"}}, headers=headers)


def test_if_none_match_follows_rfc_9110() -> None:
    etag = '"3-abc"'
    assert if_none_match('"3-abc"', etag)
    assert if_none_match('W/"3-abc"', etag)  # weak comparison
    assert if_none_match('"x", W/"3-abc" , "y"', etag)
    assert if_none_match("*", etag)
    assert not if_none_match('"3-abcd"', etag)
    assert not if_none_match("3-abc", etag)  # not an entity tag: no quotes
    assert not if_none_match(None, etag)
    assert not if_none_match("", etag)


def test_bulk_answers_304_to_weak_star_and_listed_etags(http: httpx.Client) -> None:
    first = _bulk(http)
    etag = first.headers["ETag"]
    for header in (etag, f"W/{etag}", "*", f'"other", {etag}'):
        again = _bulk(http, **{"If-None-Match": header})
        assert (again.status_code, again.content) == (304, b""), header
        assert again.headers["ETag"] == etag
    assert _bulk(http, **{"If-None-Match": '"other"'}).status_code == 200


def test_no_random_answers_without_a_targeting_key(http: httpx.Client) -> None:
    """A rollout hashes on userId, else sessionId; with neither, Unleash would pick a random
    id: OFREP answers TARGETING_KEY_MISSING instead, so bulk answers (and ETags) are stable."""
    single = http.post(f"{EVAL}/canary", json={"context": {"plan": "pro"}})
    assert single.status_code == 400
    assert single.json()["key"] == "canary"
    assert single.json()["errorCode"] == "TARGETING_KEY_MISSING"
    assert http.post(f"{EVAL}/everyone", json={"context": {}}).json()["value"] is True
    by_session = http.post(f"{EVAL}/canary", json={"context": {"sessionId": "s1"}})
    assert by_session.status_code == 200  # Unleash's default stickiness falls back to it
    answers = [http.post(EVAL, json={"context": {"plan": "pro"}}) for _ in range(5)]
    assert len({answer.headers["ETag"] for answer in answers}) == 1
    flags = {flag["key"]: flag for flag in answers[0].json()["flags"]}
    assert flags["canary"]["errorCode"] == "TARGETING_KEY_MISSING"
    assert flags["everyone"]["value"] is True


def test_wrong_methods_answer_405_with_allow(http: httpx.Client) -> None:
    answer = http.get(EVAL)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.headers["Content-Type"] == "application/json"
    assert "GET" in answer.json()["errorDetails"]
    admin = http.patch("/admin/flags/everyone")
    assert (admin.status_code, admin.headers["Allow"]) == (405, "DELETE, PUT")
    assert "PATCH" in admin.json()["error"]
    assert http.get("/nowhere").status_code == 404


def test_a_body_over_the_limit_answers_413_as_json(http: httpx.Client) -> None:
    answer = http.post(EVAL, content=b"{" + b" " * (1 << 20) + b"}")
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json"
    assert "limit of 1048576 bytes" in answer.json()["errorDetails"]


def test_browsers_may_evaluate_but_no_cors_by_default(http: httpx.Client) -> None:
    browser = {"User-Agent": "Mozilla/5.0", "Origin": "http://shop.test"}
    answer = http.post(f"{EVAL}/everyone", json={"context": {}}, headers=browser)
    assert answer.json()["value"] is True
    assert "Access-Control-Allow-Origin" not in answer.headers  # the browser hides it
    assert http.options(EVAL, headers=browser).status_code == 405
    # a cross-site request never changes flags
    refused = http.post("/admin/flags/everyone/disable", headers=browser)
    assert refused.status_code == 403
    assert "'http://shop.test'" in refused.json()["error"]
    assert http.get("/admin/flags").json()["flags"][0]["enabled"] is True


def test_cors_for_the_origins_allowed(store: FlagStore) -> None:
    allowed, other = {"Origin": "http://shop.test"}, {"Origin": "http://evil.test"}
    with OfrepServer(store, cors_origins=["http://shop.test"]) as server:
        url = server.url
        preflight = httpx.options(
            f"{url}{EVAL}",
            headers={**allowed, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://shop.test"
        assert preflight.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
        assert "If-None-Match" in preflight.headers["Access-Control-Allow-Headers"]
        answer = httpx.post(f"{url}{EVAL}", json={"context": {}}, headers=allowed)
        assert answer.headers["Access-Control-Allow-Origin"] == "http://shop.test"
        assert answer.headers["Access-Control-Expose-Headers"] == "ETag"
        assert answer.headers["Vary"] == "Origin"
        assert httpx.post(f"{url}/admin/flags/everyone/disable", headers=allowed).is_success
        blocked = httpx.post(f"{url}{EVAL}", json={"context": {}}, headers=other)
        assert "Access-Control-Allow-Origin" not in blocked.headers
        assert httpx.post(f"{url}/admin/revive", headers=other).status_code == 403
    with OfrepServer(store, cors_origins="*") as server:
        answer = httpx.post(f"{server.url}{EVAL}", json={"context": {}}, headers=other)
        assert answer.headers["Access-Control-Allow-Origin"] == "*"


def _status(url: str, token: str | None = None, **json: Any) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(url, json=json or {"context": {}}, headers=headers).status_code


def test_bearer_tokens_for_evaluation_and_admin(store: FlagStore) -> None:
    with OfrepServer(store, token="read-secret", admin_token="admin-secret") as server:
        evaluate, admin = f"{server.url}{EVAL}/everyone", f"{server.url}/admin/revive"
        missing = httpx.post(evaluate, json={"context": {}})
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="pytest-chaos"'
        assert "Bearer" in missing.json()["errorDetails"]
        assert _status(evaluate, "wrong") == 401
        assert _status(evaluate, "admin-secret") == 401  # each API its own token
        assert _status(evaluate, "read-secret") == 200
        assert _status(admin, "read-secret") == 401
        assert _status(admin, "admin-secret") == 200
    with OfrepServer(store, admin_token="admin-secret") as server:
        assert _status(f"{server.url}{EVAL}/everyone") == 200  # evaluation stays open
    # with an admin token, the admin API may listen beyond loopback
    OfrepServer(store, listen="0.0.0.0:0", admin_token="admin-secret")
    with pytest.raises(ValueError, match="admin_token"):
        OfrepServer(store, listen="0.0.0.0:0")
    with pytest.raises(ValueError, match="token must be a non-empty string"):
        OfrepServer(store, token="")
