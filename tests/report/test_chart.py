"""The timeline chart: a standalone SVG whose marks sit where the journal says they happened,
drawn from real journals and from journals with parts missing or malformed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.report.chart import BOTTOM, RIGHT, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"
JOURNALS = Path(__file__).parent / "data" / "session" / "journals"


def journal(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((JOURNALS / f"experiments.py_test_{name}.json").read_text())
    return loaded


def parse(svg: str) -> ElementTree.Element:
    """The SVG as XML: it must be well-formed to be attached on its own."""
    return ElementTree.fromstring(svg)


def tooltips(root: ElementTree.Element) -> list[str]:
    """The titles of the chart's marks (a group or a rect each), which people hover."""
    return [
        title.text or ""
        for element in root.iter()
        if element.tag in (f"{SVG}g", f"{SVG}rect")
        for title in element.findall(f"{SVG}title")
    ]


def time_axis(root: ElementTree.Element) -> tuple[float, float]:
    """Slope and intercept of x(t), read back from the labelled ticks under the plot."""
    ticks = [
        (float(text.text or ""), float(text.attrib["x"]))
        for text in root.iter(f"{SVG}text")
        if text.attrib.get("y") == str(BOTTOM + 15)
    ]
    assert len(ticks) >= 3, ticks
    (t0, x0), (t1, x1) = ticks[0], ticks[-1]
    slope = (x1 - x0) / (t1 - t0)
    return slope, x0 - slope * t0


def test_a_standalone_svg_with_a_size() -> None:
    root = parse(timeline_svg(journal("naive_shop_5")))
    assert root.tag == f"{SVG}svg"
    assert root.attrib["width"] == "760" and root.attrib["height"] == "300"
    assert root.attrib["viewBox"] == "0 0 760 300"
    assert root.find(f"{SVG}title") is not None


def test_marks_of_a_deviated_experiment_sit_at_their_times() -> None:
    data = journal("naive_shop_5")
    root = parse(timeline_svg(data))
    slope, intercept = time_axis(root)

    fault = data["pytest_chaos"]["timeline"][0]
    window = next(rect for rect in root.iter(f"{SVG}rect") if rect.attrib.get("fill") == "#f59e0b")
    assert float(window.attrib["x"]) == pytest.approx(
        slope * fault["applied_at_s"] + intercept, abs=1
    )
    right = float(window.attrib["x"]) + float(window.attrib["width"])
    assert right == pytest.approx(slope * fault["ended_at_s"] + intercept, abs=1)

    deviations = data["pytest_chaos"]["deviations"]
    marked = [text for text in tooltips(root) if ": deviation: " in text]
    assert len(marked) == len(deviations) >= 1
    assert deviations[0]["explanation"] in marked[0]

    during = data["steady_states"]["during"]
    checks = [text for text in tooltips(root) if "hypothesis" in text]
    assert len(checks) == len(during)
    assert sum("hypothesis met" in text for text in checks) == sum(
        state["steady_state_met"] for state in during
    )


def test_load_points_are_shifted_onto_the_method_clock() -> None:
    data = journal("careful_shop_0.1")
    load = data["pytest_chaos"]["load"]
    root = parse(timeline_svg(data))
    slope, intercept = time_axis(root)
    lines = [line.attrib["points"].split() for line in root.iter(f"{SVG}polyline")]
    assert len(lines) == 3  # error rate, p99, p50
    expected = [
        slope * (row["second"] + 0.5 - load["method_started_s"]) + intercept
        for row in load["per_second"]
    ]
    for points in lines:
        xs = [float(point.split(",")[0]) for point in points]
        assert xs == pytest.approx(expected, abs=0.5)


def test_a_halt_is_drawn_and_labelled() -> None:
    data = journal("halted_shop_5")
    root = parse(timeline_svg(data))
    halts = [text for text in tooltips(root) if ": halted: " in text]
    assert halts == [
        f"t+{data['pytest_chaos']['halted']['breached_at_s']:.2f} s: halted: "
        + data["pytest_chaos"]["halted"]["explanation"]
    ]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"pytest_chaos": None, "steady_states": None},
        {
            "experiment": {"title": 5},
            "steady_states": {"during": [{"at_s": "soon"}, None, {"steady_state_met": True}]},
            "pytest_chaos": {
                "load": {
                    "per_second": [{"second": None}, "x", {"second": 0}],
                    "method_started_s": None,
                },
                "timeline": [
                    {"applied_at_s": None},
                    3,
                    {"fault": "cut", "applied_at_s": float("nan")},
                ],
                "deviations": "none",
                "halted": {"probe": "p"},
            },
        },
    ],
    ids=["empty", "nulls", "malformed"],
)
def test_missing_or_malformed_parts_draw_an_empty_chart(data: dict[str, Any]) -> None:
    root = parse(timeline_svg(data))
    assert root.attrib["viewBox"] == "0 0 760 300"
    assert tooltips(root) == []
    assert "no load recorded" in "".join(root.itertext())


def test_a_fault_still_on_reaches_the_end_and_text_is_escaped() -> None:
    data = {
        "experiment": {"title": "<b>&</b>"},
        "pytest_chaos": {
            "timeline": [{"fault": "cut <all> & more", "applied_at_s": 0.5, "ended_at_s": None}],
            "deviations": [{"at_s": 2.2, "explanation": "a < b"}],
        },
    }
    svg = timeline_svg(data)
    root = parse(svg)
    assert "<b>" not in svg
    assert root.find(f"{SVG}title").text.startswith("<b>&</b>")  # type: ignore[union-attr]
    assert tooltips(root) == [
        "cut <all> & more: t+0.50 s to the end",
        "t+2.20 s: deviation: a < b",
    ]
    window = next(rect for rect in root.iter(f"{SVG}rect") if rect.attrib.get("fill") == "#f59e0b")
    assert float(window.attrib["x"]) + float(window.attrib["width"]) == pytest.approx(RIGHT)
