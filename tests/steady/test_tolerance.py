"""Tolerances with Chaos Toolkit's semantics: each kind's checks, descriptions, JSON forms and
validation errors, and a cross-check against chaostoolkit-lib's own ``within_tolerance``."""

from __future__ import annotations

import enum
import json
import re
import subprocess
import sys
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from pytest_chaos.steady.tolerance import (
    Between,
    Exact,
    InRange,
    JsonPath,
    OneOf,
    Regex,
    Satisfies,
    Tolerance,
    ToleranceVerdict,
    between,
    exact,
    jsonpath,
    one_of,
    regex,
    satisfies,
    tolerance,
    within_tolerance,
)

HTTP_OK = {"status": 200, "headers": {}, "body": "I am healthy"}
ITEMS = {"items": [{"id": 1}, {"id": 2}]}


def is_healthy(value: Any) -> bool:
    return value == "healthy"


# --- exact values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "value", "within"),
    [
        (200, 200, True),
        (200, 201, False),
        (200, "200", False),
        ("ok", "ok", True),
        ("ok", "OK", False),
        (True, True, True),
        (True, False, False),
        (False, None, False),
        (0.5, 0.5, True),
        (0.5, 0.25, False),
    ],
)
def test_exact_compares_with_equality(expected: Any, value: Any, within: bool) -> None:
    assert exact(expected).check(value) is within


def test_an_int_compares_the_status_of_a_dict() -> None:
    assert exact(200).check(HTTP_OK)
    assert not exact(500).check(HTTP_OK)
    assert not exact(200).check({"code": 200})  # no status: the dict itself is compared


def test_only_an_int_has_the_status_rule() -> None:
    assert not exact("ok").check({"status": "ok"})
    assert not exact(True).check({"status": True})
    assert not exact(200.0).check({"status": 200})


def test_an_int_enum_is_an_int() -> None:
    class Status(enum.IntEnum):
        OK = 200

    assert exact(Status.OK).check(HTTP_OK)
    assert exact(Status.OK) == exact(200)


# --- lists: a range of two, membership otherwise ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "within"), [(0, True), (0.005, True), (0.01, True), (-0.001, False), (0.02, False)]
)
def test_a_list_of_two_is_an_inclusive_range(value: float, within: bool) -> None:
    assert tolerance([0, 0.01]).check(value) is within
    assert between(0, 0.01).check(value) is within


def test_a_range_is_false_for_what_is_not_a_number() -> None:
    for value in ("5", None, [5], {"code": 5}):
        verdict = between(0, 10).evaluate(value)
        assert not verdict.ok
        assert "not a number" in verdict.detail


def test_a_list_of_two_matches_a_status_by_membership_as_chaos_toolkit_does() -> None:
    assert between(200, 299).check({"status": 200})
    assert between(200, 299).check({"status": 299})
    assert not between(200, 299).check({"status": 250})
    assert "membership" in between(200, 299).evaluate({"status": 250}).detail
    # A range of statuses is the range type with a target.
    assert between(200, 299, target="status").check({"status": 250})


def test_other_lists_are_membership() -> None:
    assert tolerance([200, 204, 301]).check(204)
    assert not tolerance([200, 204, 301]).check(202)
    assert tolerance([200]).check(200)
    assert tolerance(["up", "ok", "green"]).check("ok")
    assert one_of(["up", "down"]).check("down")
    assert one_of(x for x in (1, 2, 3)).check(3)


def test_membership_compares_the_status_of_a_dict() -> None:
    assert one_of([200, 204]).check({"status": 204})
    assert not one_of([200, 204]).check({"status": 202})


def test_membership_drops_repeated_values() -> None:
    assert one_of([200, 204, 200]) == one_of([200, 204])
    assert one_of([200, 204, 200]).values == (200, 204)  # type: ignore[attr-defined]


def test_membership_of_two_writes_one_value_twice_to_stay_membership() -> None:
    form = one_of([200, 204]).to_json()
    assert form == [200, 204, 200]
    assert tolerance(form) == one_of([200, 204])
    assert not tolerance(form).check(202)


# --- regular expressions ---------------------------------------------------------------------


def test_a_regex_searches_rather_than_matches() -> None:
    assert regex("ok").check("all ok here")
    assert regex("^ok").check("ok!")
    assert not regex("^ok$").check("ok!")


def test_a_regex_searches_the_target_of_a_dict() -> None:
    assert regex("healthy", target="body").check(HTTP_OK)
    assert not regex("sick", target="body").check(HTTP_OK)


def test_a_regex_searches_the_value_when_the_target_is_not_there() -> None:
    assert not regex("healthy", target="missing").check(HTTP_OK)  # a dict is not text
    assert regex("healthy", target="body").check("I am healthy")


def test_a_regex_reads_bytes_as_utf8_and_refuses_other_values() -> None:
    assert regex("ok").check(b"ok")
    assert not regex("ok").check(b"\xff ok")
    verdict = regex("^2").evaluate(200)
    assert not verdict.ok
    assert verdict.detail == "got 200, which is not text"


def test_a_compiled_regex_keeps_its_flags() -> None:
    compiled = regex(re.compile("^ok$", re.IGNORECASE | re.MULTILINE))
    assert compiled.check("fine\nOK")
    assert compiled.to_json() == {"type": "regex", "pattern": "(?im)^ok$"}
    assert tolerance(compiled.to_json()) == compiled
    assert regex(re.compile("(?i)ok")) == regex("(?i)ok")  # inline flags are not doubled


# --- JSONPath --------------------------------------------------------------------------------


def test_jsonpath_without_expect_or_count_holds_when_anything_matches() -> None:
    assert jsonpath("$.status").check({"status": "up"})
    assert jsonpath("$.status").check({"status": None})
    assert not jsonpath("$.missing").check({"status": "up"})
    assert not jsonpath("$.items[*]").check({"items": []})


def test_jsonpath_expect_a_scalar_compares_the_one_match() -> None:
    assert jsonpath("$.status", expect="up").check({"status": "up"})
    assert not jsonpath("$.status", expect="up").check({"status": "down"})
    assert not jsonpath("$..id", expect=1).check(ITEMS)  # two matches


def test_jsonpath_expect_a_list_compares_the_list_of_matches() -> None:
    assert jsonpath("$.items[*].id", expect=[1, 2]).check(ITEMS)
    assert not jsonpath("$.items[*].id", expect=[2, 1]).check(ITEMS)
    assert not jsonpath("$.a", expect=[1, 2]).check({"a": [1, 2]})
    assert jsonpath("$.a", expect=[[1, 2]]).check({"a": [1, 2]})


def test_jsonpath_expect_none_is_a_value() -> None:
    assert jsonpath("$.a", expect=None).check({"a": None})
    assert not jsonpath("$.a", expect=None).check({"b": None})
    assert jsonpath("$.a", expect=None).to_json() == {
        "type": "jsonpath",
        "path": "$.a",
        "expect": [None],
    }


def test_jsonpath_count_is_the_number_of_matches() -> None:
    assert jsonpath("$.items[*]", count=2).check(ITEMS)
    assert not jsonpath("$.items[*]", count=3).check(ITEMS)
    assert jsonpath("$.items[*]", count=0).check({"items": []})
    assert jsonpath("$..id", count=2, expect=[1, 2]).check(ITEMS)


def test_jsonpath_reads_the_target_of_a_dict() -> None:
    check = jsonpath("$.status", expect="up", target="body")
    assert check.check({"status": 200, "body": {"status": "up"}})
    assert not check.check({"status": 200, "body": {"status": "down"}})


@pytest.mark.parametrize(
    "body", ['{"status": "up"}', b'{"status": "up"}', bytearray(b'{"status": "up"}')]
)
def test_jsonpath_decodes_str_and_bytes_as_json(body: Any) -> None:
    assert jsonpath("$.status", expect="up").check(body)
    assert jsonpath("$.status", expect="up", target="body").check({"body": body})


def test_jsonpath_searches_a_string_that_is_not_json_as_is() -> None:
    assert not jsonpath("$.a").check("not json")
    assert jsonpath("$", expect="not json").check("not json")
    assert not jsonpath("$.a").check(b"\xff")


def test_jsonpath_uses_jsonpath_ng_filters() -> None:
    nodes = {"nodes": [{"name": "a", "up": True}, {"name": "b", "up": False}]}
    assert jsonpath("$.nodes[?(@.up == false)].name", expect=["b"]).check(nodes)
    assert jsonpath("$.nodes[?(@.up == false)]", count=0).check({"nodes": []})


def test_jsonpath_says_what_it_found() -> None:
    verdict = jsonpath("$.items[*].id", expect=[1]).evaluate(ITEMS)
    assert verdict == ToleranceVerdict(False, "found [1, 2]")


def test_jsonpath_without_the_library_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "jsonpath_ng.ext", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'pytest-chaos[jsonpath]'")):
        jsonpath("$.status")


def test_jsonpath_ng_is_imported_only_for_a_jsonpath_tolerance() -> None:
    code = (
        "import sys\n"
        "from pytest_chaos.steady.tolerance import tolerance\n"
        "tolerance({'type': 'regex', 'pattern': 'ok'})\n"
        "print('jsonpath_ng' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the range type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "within"),
    [
        (0, True),
        (0.5, True),
        (1, True),
        (1.5, False),
        (-0.1, False),
        ("0.5", True),
        (Decimal("0.999"), True),
        ("abc", False),
        ("NaN", False),
        (None, False),
        ({"status": 1}, False),
    ],
)
def test_the_range_type_reads_the_value_as_a_decimal(value: Any, within: bool) -> None:
    assert tolerance({"type": "range", "range": [0, 1]}).check(value) is within


def test_the_range_type_compares_floats_exactly() -> None:
    assert tolerance({"type": "range", "range": [0, 0.1]}).check(0.1)
    assert InRange(Decimal("0"), Decimal("0.1")).check("0.1")


def test_the_range_type_reads_the_target_of_a_dict() -> None:
    statuses = between(200, 299, target="status")
    assert isinstance(statuses, InRange)
    assert statuses.check({"status": 250})
    assert not statuses.check({"status": 300})
    assert statuses.check(250)  # not a dict: read as is


def test_the_range_type_says_what_is_not_a_number() -> None:
    verdict = between(0, 1, target="latency").evaluate({"latency": "slow"})
    assert verdict == ToleranceVerdict(False, "got 'slow', which is not a number")


# --- callables -------------------------------------------------------------------------------


def test_a_callable_holds_when_it_returns_something_true() -> None:
    assert satisfies(is_healthy).check("healthy")
    assert not satisfies(is_healthy).check("sick")
    assert tolerance(len).check([1])
    assert not tolerance(len).check([])


def test_a_callable_that_raises_is_outside_the_tolerance() -> None:
    def explode(value: Any) -> bool:
        raise RuntimeError(f"cannot judge {value}")

    verdict = satisfies(explode).evaluate(7)
    assert verdict.ok is False
    assert not verdict
    assert verdict.detail.endswith("explode raised RuntimeError: cannot judge 7")


def test_a_callable_is_named_by_its_qualified_name_or_the_name_given() -> None:
    assert satisfies(is_healthy).describe() == "accepted by is_healthy"
    assert satisfies(lambda v: v, name="truthy").describe() == "accepted by truthy"
    assert satisfies(is_healthy) == satisfies(is_healthy, name="is_healthy")


def is_healthy_or_unknown(value: Any = None) -> bool:
    return value in ("healthy", None)


def test_a_callable_writes_a_python_probe_as_its_json_form() -> None:
    """Chaos Toolkit calls a tolerance probe with ``value=`` and, when it validates, binds
    the arguments without it: a function whose ``value`` has a default is named as it is,
    one that requires it by the stand-in that chaostoolkit-lib accepts."""
    assert satisfies(is_healthy_or_unknown).to_json() == {
        "type": "probe",
        "name": "is_healthy_or_unknown",
        "provider": {
            "type": "python",
            "module": __name__,
            "func": "is_healthy_or_unknown",
            "arguments": {},
        },
    }
    assert satisfies(is_healthy).to_json()["provider"] == {
        "type": "python",
        "module": "pytest_chaos.core.activity",
        "func": "unimportable",
        "arguments": {"callable": f"{__name__}.is_healthy"},
    }


# --- descriptions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "text"),
    [
        (exact(200), "== 200"),
        (exact("ok"), "== 'ok'"),
        (between(0, 0.01), "between 0 and 0.01"),
        (between(Decimal("0.5"), 1), "between 0.5 and 1"),
        (between(0, 500, target="latency_ms"), "latency_ms between 0 and 500"),
        (one_of([200, 204]), "one of [200, 204]"),
        (regex("ok"), "matching /ok/"),
        (regex("ok", target="body"), "body matching /ok/"),
        (jsonpath("$.status", expect="up"), "$.status == ['up']"),
        (jsonpath("$.status", expect=["up"], target="body"), "$.status of body == ['up']"),
        (jsonpath("$.items[*]", count=1), "$.items[*] has 1 match"),
        (jsonpath("$.items[*]", count=3), "$.items[*] has 3 matches"),
        (jsonpath("$.status"), "$.status has a match"),
        (satisfies(is_healthy), "accepted by is_healthy"),
    ],
    ids=str,
)
def test_describe(made: Tolerance, text: str) -> None:
    assert made.describe() == text
    assert str(made) == text


# --- JSON forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "form"),
    [
        (exact(200), 200),
        (exact("ok"), "ok"),
        (exact(True), True),
        (exact(0.5), 0.5),
        (between(0, 0.01), [0, 0.01]),
        (one_of([200, 204, 301]), [200, 204, 301]),
        (one_of(["up"]), ["up"]),
        (one_of(["up", "down"]), ["up", "down", "up"]),
        (regex("^ok$"), {"type": "regex", "pattern": "^ok$"}),
        (regex("ok", target="body"), {"type": "regex", "pattern": "ok", "target": "body"}),
        (jsonpath("$.status"), {"type": "jsonpath", "path": "$.status"}),
        (
            jsonpath("$.status", expect="up", target="body"),
            {"type": "jsonpath", "path": "$.status", "expect": ["up"], "target": "body"},
        ),
        (
            jsonpath("$.items[*].id", expect=[1, 2], count=2),
            {"type": "jsonpath", "path": "$.items[*].id", "expect": [1, 2], "count": 2},
        ),
        (jsonpath("$.items[*]", count=0), {"type": "jsonpath", "path": "$.items[*]", "count": 0}),
        (
            between(200, 299, target="status"),
            {"type": "range", "range": [200, 299], "target": "status"},
        ),
        (InRange(0, 1), {"type": "range", "range": [0, 1]}),
    ],
    ids=str,
)
def test_to_json_round_trips(made: Tolerance, form: Any) -> None:
    assert made.to_json() == form
    assert tolerance(made.to_json()) == made
    assert tolerance(json.loads(json.dumps(made.to_json()))) == made


def test_decimal_bounds_are_written_as_json_numbers() -> None:
    assert between(Decimal("1"), Decimal("2.5")).to_json() == [1, 2.5]


# --- tolerance(): normalising any accepted form ----------------------------------------------


def test_tolerance_passes_a_tolerance_through() -> None:
    made = regex("ok")
    assert tolerance(made) is made


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (200, Exact),
        ("ok", Exact),
        (True, Exact),
        (0.5, Exact),
        ([0, 1], Between),
        ((0, 1), Between),
        ([1, 2, 3], OneOf),
        ((1,), OneOf),
        ({"type": "regex", "pattern": "ok"}, Regex),
        ({"type": "jsonpath", "path": "$.a", "count": None, "target": None}, JsonPath),
        ({"type": "range", "range": [0, 1]}, InRange),
        (re.compile("ok"), Regex),
        (is_healthy, Satisfies),
    ],
    ids=lambda value: getattr(value, "__name__", None) or repr(value),  # stable under xdist
)
def test_tolerance_makes_each_kind(spec: Any, kind: type[Tolerance]) -> None:
    assert type(tolerance(spec)) is kind


def test_within_tolerance_is_tolerance_then_check() -> None:
    assert within_tolerance(200, HTTP_OK)
    assert not within_tolerance([300, 399], 200)


# --- equality and immutability ---------------------------------------------------------------


def test_tolerances_are_equal_by_value() -> None:
    assert tolerance(200) == exact(200)
    assert tolerance([0, 1]) == between(0, 1)
    assert tolerance({"type": "jsonpath", "path": "$.a", "expect": "x"}) == jsonpath(
        "$.a", expect=["x"]
    )
    assert between(0, 1) != tolerance({"type": "range", "range": [0, 1]})  # not the same rules
    assert len({exact(200), exact(200), between(0, 1), regex("ok")}) == 3


def test_exact_tells_an_int_from_a_bool_and_a_float() -> None:
    # Python has 1 == True == 1.0, but only the int compares a dict's status.
    assert exact(1) != exact(True)
    assert exact(1) != exact(1.0)
    assert exact(1) == exact(1)


def test_tolerances_are_immutable() -> None:
    made = jsonpath("$.a", expect=1)
    with pytest.raises(AttributeError):
        made.path = "$.b"  # type: ignore[attr-defined]


# --- validation: at construction, naming the bad value ---------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "names"),
    [
        (lambda: exact(None), TypeError, "None"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: exact([1]), TypeError, "[1]"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: exact(float("nan")), ValueError, "nan"),
        (lambda: between("a", 1), ValueError, "'a'"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: between(0, None), ValueError, "None"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: between(True, 2), ValueError, "True"),
        (lambda: between(0, float("nan")), ValueError, "nan"),
        (lambda: between(2, 1), ValueError, "lower bound 2 is above the upper bound 1"),
        (lambda: between(0, 1, target=""), TypeError, "target=''"),
        (lambda: one_of([]), ValueError, "no values"),
        (lambda: one_of("abc"), TypeError, "'abc'"),
        (lambda: one_of(5), TypeError, "5"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: regex("("), ValueError, "'('"),
        (lambda: regex(5), TypeError, "5"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: regex(re.compile(b"ok")), TypeError, "b'ok'"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: regex("ok", target=3), TypeError, "target=3"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: jsonpath(""), ValueError, "''"),
        (lambda: jsonpath("   "), ValueError, "'   '"),
        (lambda: jsonpath("$.["), ValueError, "'$.['"),
        (lambda: jsonpath(5), TypeError, "5"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: jsonpath("$.a", count=-1), ValueError, "count=-1"),
        (lambda: jsonpath("$.a", count=True), TypeError, "count=True"),
        (lambda: jsonpath("$.a", count="2"), TypeError, "count='2'"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: jsonpath("$.a", expect=[1], count=2), ValueError, "count=2 contradicts"),
        (lambda: satisfies(5), TypeError, "5"),  # type: ignore[arg-type]  # a wrong type on purpose
        (lambda: satisfies(is_healthy, name=""), TypeError, "name=''"),
        (lambda: tolerance(None), TypeError, "None"),
        (lambda: tolerance(b"ok"), TypeError, "b'ok'"),
        (lambda: tolerance({1, 2}), TypeError, "{1, 2}"),
        (lambda: tolerance([]), ValueError, "no values"),
        (lambda: tolerance(["up", "down"]), ValueError, "['up', 'down']"),
        (lambda: tolerance([2, 1]), ValueError, "lower bound 2"),
        (lambda: tolerance({"type": "nope"}), ValueError, "'nope'"),
        (lambda: tolerance({"pattern": "ok"}), ValueError, "unknown type None"),
        (lambda: tolerance({"type": "regex"}), ValueError, "'pattern'"),
        (lambda: tolerance({"type": "jsonpath"}), ValueError, "'path'"),
        (lambda: tolerance({"type": "range"}), ValueError, "'range'"),
        (lambda: tolerance({"type": "range", "range": [1]}), ValueError, "[1]"),
        (lambda: tolerance({"type": "range", "range": "0-1"}), ValueError, "'0-1'"),
        (lambda: tolerance({"type": "range", "range": ["a", 1]}), ValueError, "'a'"),
        (
            lambda: tolerance({"type": "jsonpath", "path": "$.a", "expected": 1}),
            ValueError,
            "'expected'",
        ),
        (lambda: tolerance({"type": "probe", "name": "x"}), ValueError, "callable"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_it(
    make: Any, error: type[Exception], names: str
) -> None:
    with pytest.raises(error) as caught:
        make()
    assert names in str(caught.value)


def test_messages_say_what_is_allowed() -> None:
    with pytest.raises(TypeError, match="a list of two numbers"):
        tolerance(None)
    with pytest.raises(ValueError, match=r"use 'regex', 'jsonpath' or 'range'"):
        tolerance({"type": "nope"})
    with pytest.raises(ValueError, match=r"one_of\(\.\.\.\).*\['up', 'down', 'up'\]"):
        tolerance(["up", "down"])
    with pytest.raises(ValueError, match=r"use 'type', 'path', 'expect', 'count', 'target'"):
        tolerance({"type": "jsonpath", "path": "$.a", "expected": 1})


def test_checking_never_raises() -> None:
    odd = [None, object(), {"status": object()}, b"\xff", float("nan"), [1, [2]], {"a": {1, 2}}]
    made = [
        exact(200),
        between(0, 1),
        one_of([1, 2, 3]),
        regex("x", target="a"),
        jsonpath("$.a", target="a"),
        between(0, 1, target="a"),
        satisfies(lambda v: v.missing),
    ]
    for tol in made:
        for value in odd:
            assert tol.check(value) in (True, False)


# --- the cross-check with Chaos Toolkit ------------------------------------------------------


class Row(NamedTuple):
    """A tolerance, a value, and what chaostoolkit-lib's ``within_tolerance`` made of them:
    True, False, None, or ``"raises <Error>"``. ``ours`` is set where this plugin answers
    otherwise on purpose (``why`` says why); where Chaos Toolkit raises, the answer here is
    False unless ``ours`` says otherwise."""

    spec: Any
    value: Any
    chaoslib: bool | str | None
    ours: bool | None = None
    why: str = ""

    def expected(self) -> bool:
        if self.ours is not None:
            return self.ours
        return self.chaoslib is True


# Produced by running chaoslib.hypothesis.within_tolerance(spec, value) from
# chaostoolkit-lib 1.44.0 (with jsonpath2 0.4.5 for its jsonpath type) under Python 3.11 on
# each (spec, value) below, and writing its result (or the exception it raised) as the third
# column. The `ours` column marks the deliberate differences.
CHAOSLIB_RESULTS = [
    Row(200, 200, True),
    Row(200, 201, False),
    Row(200, 200.0, True),
    Row(200, "200", False),
    Row(200, {"status": 200}, True),
    Row(200, {"status": 500}, False),
    Row(200, {"code": 200}, False),
    Row("ok", "ok", True),
    Row("ok", "OK", False),
    Row("ok", {"status": "ok"}, False),
    Row(True, True, True),
    Row(True, False, False),
    Row(True, 1, True),
    Row(False, 0, True),
    Row(1, True, True),
    Row(True, {"status": True}, False),
    Row(
        0.5,
        0.5,
        None,
        ours=True,
        why="a float is exact here; Chaos Toolkit has no float tolerance (None)",
    ),
    Row([0, 10], 0, True),
    Row([0, 10], 10, True),
    Row([0, 10], 5, True),
    Row([0, 10], 11, False),
    Row([0, 10], -1, False),
    Row([0, 0.01], 0.005, True),
    Row([0, 0.01], 0.02, False),
    Row([0, 10], Decimal("2.5"), True),
    Row([200, 299], {"status": 200}, True),
    Row([200, 299], {"status": 250}, False),
    Row([0, 10], "5", "raises TypeError"),
    Row([0, 10], None, "raises TypeError"),
    Row([0, 10], {"code": 5}, "raises TypeError"),
    Row([200, 204, 301], 204, True),
    Row([200, 204, 301], 202, False),
    Row([200, 204, 301], {"status": 301}, True),
    Row([200, 204, 301], {"status": 302}, False),
    Row([200], 200, True),
    Row(["up"], "up", True),
    Row(["up", "ok", "green"], "ok", True),
    Row(["up", "ok", "green"], "red", False),
    Row({"type": "regex", "pattern": "ok"}, "all ok here", True),
    Row({"type": "regex", "pattern": "^ok$"}, "ok!", False),
    Row({"type": "regex", "pattern": "^ok"}, "ok!", True),
    Row({"type": "regex", "pattern": "[0-9]+ items"}, "found 12 items", True),
    Row(
        {"type": "regex", "pattern": "healthy", "target": "body"},
        {"status": 200, "body": "I am healthy"},
        True,
    ),
    Row(
        {"type": "regex", "pattern": "sick", "target": "body"},
        {"status": 200, "body": "I am healthy"},
        False,
    ),
    Row(
        {"type": "regex", "pattern": "healthy", "target": "missing"},
        {"status": 200, "body": "I am healthy"},
        "raises TypeError",
    ),
    Row(
        {"type": "regex", "pattern": "healthy", "target": "body"},
        "I am healthy",
        "raises AttributeError",
        ours=True,
        why="a value that is not a dict is searched as is, as a dict without the target is",
    ),
    Row({"type": "regex", "pattern": "^2"}, 200, "raises TypeError"),
    Row(
        {"type": "regex", "pattern": "ok"},
        b"ok",
        "raises TypeError",
        ours=True,
        why="bytes are decoded as UTF-8, as the jsonpath type does",
    ),
    Row({"type": "jsonpath", "path": "$.status"}, {"status": "up"}, True),
    Row({"type": "jsonpath", "path": "$.missing"}, {"status": "up"}, False),
    Row({"type": "jsonpath", "path": "$.status", "expect": "up"}, {"status": "up"}, True),
    Row({"type": "jsonpath", "path": "$.status", "expect": "up"}, {"status": "down"}, False),
    Row(
        {"type": "jsonpath", "path": "$.items[*].id", "expect": [1, 2]},
        {"items": [{"id": 1}, {"id": 2}]},
        True,
    ),
    Row(
        {"type": "jsonpath", "path": "$.items[*].id", "expect": [2, 1]},
        {"items": [{"id": 1}, {"id": 2}]},
        False,
    ),
    Row({"type": "jsonpath", "path": "$.a", "expect": [1, 2]}, {"a": [1, 2]}, False),
    Row({"type": "jsonpath", "path": "$.a", "expect": [[1, 2]]}, {"a": [1, 2]}, True),
    Row({"type": "jsonpath", "path": "$.a", "expect": None}, {"a": None}, True),
    Row({"type": "jsonpath", "path": "$.a", "expect": None}, {"b": None}, False),
    Row(
        {"type": "jsonpath", "path": "$.items[*]", "count": 2},
        {"items": [{"id": 1}, {"id": 2}]},
        True,
    ),
    Row(
        {"type": "jsonpath", "path": "$.items[*]", "count": 3},
        {"items": [{"id": 1}, {"id": 2}]},
        False,
    ),
    Row({"type": "jsonpath", "path": "$.items[*]", "count": 0}, {"items": []}, True),
    Row({"type": "jsonpath", "path": "$.items[*]"}, {"items": []}, False),
    Row({"type": "jsonpath", "path": "$..id", "count": 2}, {"items": [{"id": 1}, {"id": 2}]}, True),
    Row(
        {"type": "jsonpath", "path": "$.status", "expect": "up", "target": "body"},
        {"status": 200, "body": {"status": "up"}},
        True,
    ),
    Row(
        {"type": "jsonpath", "path": "$.status", "expect": "up", "target": "body"},
        {"status": 200, "body": '{"status": "up"}'},
        True,
    ),
    Row(
        {"type": "jsonpath", "path": "$.status", "expect": "up", "target": "body"},
        {"status": 200, "body": b'{"status": "up"}'},
        True,
    ),
    Row({"type": "jsonpath", "path": "$.status", "expect": "up"}, '{"status": "up"}', True),
    Row({"type": "jsonpath", "path": "$.status", "expect": "up"}, b'{"status": "up"}', True),
    Row({"type": "jsonpath", "path": "$.a"}, "not json", False),
    Row({"type": "jsonpath", "path": "$"}, "not json", True),
    Row({"type": "jsonpath", "path": "$.a"}, 5, False),
    Row(
        {"type": "jsonpath", "path": "$.a[?(@.x > 1)]", "count": 1},
        {"a": [{"x": 1}, {"x": 2}]},
        False,
        ours=True,
        why="jsonpath-ng runs filters; jsonpath2 matched nothing with this one",
    ),
    Row(
        {"type": "jsonpath", "path": "$.a[*]", "expect": [1, 2]},
        {"a": {"k": 1, "j": 2}},
        True,
    ),
    Row({"type": "jsonpath", "path": "$.a[*]", "count": 2}, {"a": {"k": 1, "j": 2}}, True),
    Row({"type": "range", "range": [0, 1]}, 0.5, True),
    Row({"type": "range", "range": [0, 1]}, 0, True),
    Row({"type": "range", "range": [0, 1]}, 1, True),
    Row({"type": "range", "range": [0, 1]}, 1.5, False),
    Row({"type": "range", "range": [0, 1]}, -0.1, False),
    Row({"type": "range", "range": [0, 0.1]}, 0.1, True),
    Row({"type": "range", "range": [0, 1]}, "0.5", True),
    Row({"type": "range", "range": [0, 1]}, "abc", False),
    Row({"type": "range", "range": [0, 1]}, Decimal("0.999"), True),
    Row({"type": "range", "range": [0, 1]}, True, True),
    Row({"type": "range", "range": [200, 299], "target": "status"}, {"status": 250}, True),
    Row({"type": "range", "range": [200, 299], "target": "status"}, {"status": 300}, False),
    Row(
        {"type": "range", "range": [200, 299], "target": "status"},
        250,
        "raises AttributeError",
        ours=True,
        why="a value that is not a dict is read as is, as a dict without the target is",
    ),
    Row({"type": "range", "range": [0, 1]}, {"status": 1}, "raises TypeError"),
    Row({"type": "range", "range": [0, 1]}, None, "raises TypeError"),
    Row({"type": "range", "range": [0, 1]}, "NaN", "raises InvalidOperation"),
]


def is_jsonpath(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("type") == "jsonpath"


def row_id(row: Row) -> str:
    return f"{row.spec!r}-{row.value!r}"[:80]


@pytest.mark.parametrize("row", CHAOSLIB_RESULTS, ids=row_id)
def test_agrees_with_chaos_toolkit(row: Row) -> None:
    assert within_tolerance(row.spec, row.value) is row.expected(), row.why


def test_the_table_still_matches_chaoslib() -> None:
    """Where chaostoolkit-lib is installed, check the table above against it."""
    hypothesis = pytest.importorskip("chaoslib.hypothesis")
    wrong = []
    for row in CHAOSLIB_RESULTS:
        if is_jsonpath(row.spec) and not hypothesis.HAS_JSONPATH:
            continue  # chaostoolkit-lib without jsonpath2
        try:
            # A copy: chaoslib writes into a "probe" tolerance's arguments.
            got = hypothesis.within_tolerance(json.loads(json.dumps(row.spec)), row.value)
        except Exception as exc:
            got = f"raises {type(exc).__name__}"
        if got != row.chaoslib:
            wrong.append((row.spec, row.value, row.chaoslib, got))
    assert not wrong


# Chaos Toolkit's ensure_hypothesis_tolerance_is_valid (1.44.0) on each spec: True when it
# accepted it. The last column is what tolerance() does here: None when it accepts the spec,
# else the exception it raises.
VALIDATION = [
    (1.5, False, None),  # a float is an exact tolerance here
    (None, False, TypeError),
    ((0, 1), False, None),  # a tuple is a list here
    ([], True, ValueError),  # nothing would be within it
    (["up", "down"], True, ValueError),  # a range of strings: almost surely meant membership
    ([2, 1], True, ValueError),  # an empty range
    ({"type": "regex"}, False, ValueError),
    ({"type": "regex", "pattern": "("}, False, ValueError),
    ({"type": "regex", "pattern": 5}, False, TypeError),
    ({"type": "jsonpath"}, False, ValueError),
    ({"type": "jsonpath", "path": ""}, False, ValueError),
    ({"type": "jsonpath", "path": "$.["}, False, ValueError),
    ({"type": "jsonpath", "path": "$.a", "count": -1}, True, ValueError),
    ({"type": "range"}, False, ValueError),
    ({"type": "range", "range": [1]}, False, ValueError),
    ({"type": "range", "range": ["a", 1]}, False, ValueError),
    ({"type": "range", "range": [2, 1]}, True, ValueError),
    ({"type": "range", "range": (0, 1)}, False, None),
    ({"type": "nope"}, False, ValueError),
    ({"pattern": "ok"}, False, ValueError),
    ({"type": "regex", "pattern": "ok", "flags": "i"}, True, ValueError),  # unknown key
]


@pytest.mark.parametrize(("spec", "chaoslib_accepts", "raises"), VALIDATION, ids=repr)
def test_validation_compared_with_chaos_toolkit(
    spec: Any, chaoslib_accepts: bool, raises: type[Exception] | None
) -> None:
    if raises is None:
        assert isinstance(tolerance(spec), Tolerance)
    else:
        with pytest.raises(raises):
            tolerance(spec)


def test_the_validation_table_still_matches_chaoslib() -> None:
    hypothesis = pytest.importorskip("chaoslib.hypothesis")
    wrong = []
    for spec, chaoslib_accepts, _ in VALIDATION:
        if is_jsonpath(spec) and not hypothesis.HAS_JSONPATH:
            continue  # chaostoolkit-lib without jsonpath2
        try:
            hypothesis.ensure_hypothesis_tolerance_is_valid(spec)
        except Exception:
            accepted = False
        else:
            accepted = True
        if accepted is not chaoslib_accepts:
            wrong.append(spec)
    assert not wrong
