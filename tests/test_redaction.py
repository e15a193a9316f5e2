"""What counts as a secret, and how it is replaced, in text and in journal data."""

from __future__ import annotations

import pytest

from pytest_chaos.core.redaction import MASK, Redactor, check


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "http http://user:TOKEN@127.0.0.1:8080/health?token=TOKEN&api_key=KEY&x=1: 500",
            "http http://***@127.0.0.1:8080/health?token=***&api_key=***&x=1: 500",
        ),
        ("https://ghp_abc123@github.com/org/repo.git.", "https://***@github.com/org/repo.git."),
        ("see http://example.com/a?page=2.", "see http://example.com/a?page=2."),
        (
            "redis-server --requirepass=hunter2 --port 6379",
            "redis-server --requirepass=*** --port 6379",
        ),
        ("API_KEY=abc123 DEBUG=1 db.password=pw", "API_KEY=*** DEBUG=1 db.password=***"),
        ("passthrough=1 client_secret=s3", "passthrough=1 client_secret=***"),
        (
            '{"password": "x y", "user": "bob", "nested": {"Authorization": "Bearer abc"}}',
            '{"password": "***", "user": "bob", "nested": {"Authorization": "***"}}',
        ),
        ("{'X-Api-Key': 'k', 'a': 1}", "{'X-Api-Key': '***', 'a': 1}"),
        (
            "Authorization: Bearer abc.def\nContent-Type: text/plain\nKeyError: 'token'",
            "Authorization: ***\nContent-Type: text/plain\nKeyError: 'token'",
        ),
        ("E   KeyError: 'toxics'", "E   KeyError: 'toxics'"),
        ("nothing secret here: pid=4 status=200", "nothing secret here: pid=4 status=200"),
    ],
)
def test_secrets_in_text(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


def test_secrets_in_data() -> None:
    journal = {
        "provider": {
            "url": "http://u:p@h/?key=1",
            "headers": {"X-Token": "a", "Accept": "json"},
        },
        "secrets": {"k8s": {"token": "t"}},
        "probes": [{"name": "http http://u:p@h/x"}, 3, None, True],
        "pair": ("auth=1", 2),
    }
    assert Redactor().data(journal) == {
        "provider": {
            "url": "http://***@h/?key=***",
            "headers": {"X-Token": MASK, "Accept": "json"},
        },
        "secrets": MASK,
        "probes": [{"name": "http http://***@h/x"}, 3, None, True],
        "pair": ("auth=***", 2),
    }
    assert journal["secrets"] == {"k8s": {"token": "t"}}  # a copy: the original is untouched


def test_users_add_names() -> None:
    redactor = Redactor(["session", "^sig$"])
    assert redactor.text("sessionid=abc sig=x signal=9 token=t") == (
        "sessionid=*** sig=*** signal=9 token=***"
    )
    assert redactor.data({"SIG": "x", "Session": {"a": 1}}) == {"SIG": MASK, "Session": MASK}


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(", "not a regular expression"),
        ("a|", "it matches every name"),
        (".*", "it matches every name"),
    ],
)
def test_patterns_that_cannot_be_used(pattern: str, problem: str) -> None:
    found = check(pattern)
    assert found is not None and found.startswith(problem)
    assert check("session|cookie") is None
