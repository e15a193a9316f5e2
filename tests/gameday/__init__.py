"""Game-day tests share two tiny suites written into a temporary folder: a shop behind the
embedded proxy (one resilient, one naive variant, a real network fault), and a switch that
an action fault breaks (no proxy; fast), plus a plan writer and an HTML well-formedness check.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

#: A small HTTP shop asking a stock service for stock through the proxy "stock"; the
#: resilient variant gives up after 200 ms and answers a fallback, the naive one hangs.
#: It runs beside a copy of tests/experiment/shop_app.py (``SHOP_APP``).
SHOP_SUITE = """
import pytest
from shop_app import Backend, serve, shop_handler

from pytest_chaos import faults, probes


@pytest.fixture(params=[0.2, None], ids=["resilient", "naive"])
def shop_url(request, toxiproxy):
    with serve(Backend) as stock:
        link = toxiproxy.proxy("stock", upstream=stock)
        with serve(shop_handler(f"http://{link.listen}/", request.param)) as front:
            yield f"http://{front}"


@pytest.mark.chaos(weight=3, hypothesis="orders answer while the stock service hangs")
def test_orders(chaos, shop_url):
    chaos.experiment(
        "orders answer while the stock service hangs",
        steady_state=[probes.http(shop_url + "/order", status=200, timeout=0.6, name="order")],
        method=[faults.timeout("stock", start_after_s=0.2, for_s=1.0)],
        load=chaos.load.http(shop_url + "/order", rps=20, duration_s=30),
        strategy="continuously",
    )
"""

#: A switch an action fault breaks. ``SWITCH_MARKS`` names a folder where applying and
#: undoing the fault leave files; ``SWITCH_STOP_URL``, when set, is called as the fault is
#: applied; ``SWITCH_HOLD_S`` is how long the method lasts; the hypothesis fails while the
#: switch is broken unless ``SWITCH_RESILIENT`` is set.
SWITCH_SUITE = """
import os
from pathlib import Path

import httpx
import pytest

from pytest_chaos import faults, probes

MARKS = Path(os.environ["SWITCH_MARKS"])
state = {"broken": False}


def apply():
    (MARKS / "applied").touch()
    state["broken"] = True
    if os.environ.get("SWITCH_STOP_URL"):
        httpx.get(os.environ["SWITCH_STOP_URL"], timeout=5)


def undo():
    state["broken"] = False
    (MARKS / "undone").touch()


def healthy():
    return os.environ.get("SWITCH_RESILIENT") == "1" or not state["broken"]


@pytest.mark.chaos(weight=2, hypothesis="the switch holds while it is broken")
def test_switch(chaos):
    chaos.experiment(
        "the switch holds while it is broken",
        steady_state=[probes.call(healthy, name="healthy")],
        method=[faults.action("break the switch", apply, undo)],
        duration_s=float(os.environ.get("SWITCH_HOLD_S", "0.3")),
        strategy="continuously",
        frequency_s=0.1,
    )
"""


def write_plan(folder: Path, body: str, name: str = "plan.toml") -> Path:
    path = folder / name
    path.write_text(body.lstrip())
    return path


def plan_text(
    *,
    suite: str,
    repetitions: int = 1,
    seed: int | None = 42,
    markers: str | None = None,
    extra: str = "",
) -> str:
    """A plan running ``suite`` (a file in the plan's folder) with owners and runbooks."""
    lines = [
        "[gameday]",
        'name = "checkout resilience"',
        'owners = ["alice@example.com", "bob@example.com"]',
        'runbooks = ["https://wiki.example.com/runbooks/checkout"]',
        f"repetitions = {repetitions}",
        *([f"seed = {seed}"] if seed is not None else []),
        "[suite]",
        f'args = ["{suite}", "-p", "no:cacheprovider"]',
        *([f'markers = "{markers}"'] if markers is not None else []),
    ]
    return "\n".join(lines) + "\n" + extra


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class WellFormed(HTMLParser):
    """Checks that every element is closed in order; collects the problems."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def check_html(text: str) -> list[str]:
    """The element names of ``text``; fails if any element is left open or closed wrongly."""
    parser = WellFormed()
    parser.feed(text)
    parser.close()
    assert not parser.problems, parser.problems
    assert not parser.stack, f"left open: {parser.stack}"
    assert text.startswith("<!DOCTYPE html>")
    return parser.tags
