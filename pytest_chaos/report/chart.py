"""An experiment's timeline as one standalone SVG: latency and error rate per second, the
fault windows, the hypothesis checks and the deviations, all on one time axis.

Time is seconds since the method started (t+0), the origin the journal's timeline,
deviations and checks already use; the load's per-second series is shifted onto it with
``load.method_started_s``. Every field of the journal may be missing: the chart draws what
exists. The SVG carries its own size and styles (no CSS classes, no ids) so that it can be
inlined many times in one page or attached alone to Allure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from pytest_chaos.report import lenient

__all__ = ["timeline_svg"]

Scale = Callable[[float], float]

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 700, 40, 220
CHECK_LANE = 258
TIME_TICKS = 8
FONT = 'font-family="system-ui, sans-serif" font-size="11"'
COLORS = {
    "p50": "#2563eb",
    "p99": "#7c3aed",
    "errors": "#dc2626",
    "fault": "#f59e0b",
    "pass": "#16a34a",
    "fail": "#dc2626",
    "deviation": "#dc2626",
    "halt": "#111827",
    "grid": "#e5e7eb",
    "text": "#374151",
}


@dataclass(frozen=True)
class _Point:
    """One second of load: its midpoint on the method's clock and what it measured."""

    t: float
    p50_ms: float | None
    p99_ms: float | None
    error_rate: float | None


@dataclass(frozen=True)
class _Window:
    """One fault: when it was applied and ended (None: still on when the journal closed)."""

    label: str
    start: float
    end: float | None


@dataclass(frozen=True)
class _Mark:
    """A moment on the timeline: a hypothesis check, a deviation or the halt."""

    t: float
    ok: bool
    text: str


def timeline_svg(journal: Mapping[str, Any]) -> str:
    """The experiment in ``journal`` as an SVG document (a string), however little it holds."""
    extra = lenient.mapping(journal.get("pytest_chaos"))
    points = _load_points(lenient.mapping(extra.get("load")))
    windows = _windows(extra.get("timeline"))
    checks = _checks(lenient.mapping(journal.get("steady_states")).get("during"))
    deviations = _deviations(extra.get("deviations"))
    halt = _halt(extra.get("halted"))
    title = str(lenient.mapping(journal.get("experiment")).get("title") or "experiment")

    moments = [p.t - 0.5 for p in points] + [p.t + 0.5 for p in points]
    moments += [w.start for w in windows] + [w.end for w in windows if w.end is not None]
    moments += [m.t for m in (*checks, *deviations, *([halt] if halt else []))]
    t0, t1 = _nice_range(min([0.0, *moments]), max([1.0, *moments]))
    x = _scale(t0, t1, LEFT, RIGHT)

    latency_max = max([0.0, *(v for p in points for v in (p.p50_ms, p.p99_ms) if v is not None)])
    ms_ticks = _ticks(0.0, latency_max or 100.0)
    y_ms = _scale(0.0, ms_ticks[-1], BOTTOM, TOP)
    error_max = max([0.0, *(p.error_rate for p in points if p.error_rate is not None)])
    rate_top = next(r for r in (0.05, 0.1, 0.2, 0.5, 1.0) if error_max <= r)
    y_rate = _scale(0.0, rate_top, BOTTOM, TOP)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" {FONT}>',
        f"<title>{escape(title)}: latency, errors, faults and checks over time</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    parts += _grid(x, t0, t1, y_ms, ms_ticks, y_rate, rate_top)
    parts += _fault_windows(x, windows, t1)
    if points:
        parts += _series(x, y_ms, y_rate, points)
    else:
        parts.append(
            f'<text x="{(LEFT + RIGHT) / 2}" y="{(TOP + BOTTOM) / 2}" text-anchor="middle" '
            f'fill="{COLORS["text"]}">no load recorded</text>'
        )
    parts += _marks(x, checks, deviations, halt)
    parts += _legend()
    parts.append("</svg>")
    return "\n".join(parts)


# -- reading the journal -----------------------------------------------------------------


def _load_points(load: Mapping[str, Any]) -> list[_Point]:
    origin = lenient.number(load.get("method_started_s")) or 0.0
    points = []
    for row in lenient.items(load.get("per_second")):
        second = lenient.number(row.get("second"))
        if second is None:
            continue
        count = lenient.number(row.get("count"))
        errors = lenient.number(row.get("errors"))
        rate = errors / count if count and errors is not None else None
        point = _Point(
            second + 0.5 - origin,
            lenient.number(row.get("p50_ms")),
            lenient.number(row.get("p99_ms")),
            rate,
        )
        if (point.p50_ms, point.p99_ms, point.error_rate) != (None, None, None):
            points.append(point)
    return sorted(points, key=lambda p: p.t)


def _windows(timeline: object) -> list[_Window]:
    windows = []
    for entry in lenient.items(timeline):
        start = lenient.number(entry.get("applied_at_s"))
        if start is None:
            continue
        label = str(entry.get("fault") or entry.get("kind") or "fault")
        windows.append(_Window(label, start, lenient.number(entry.get("ended_at_s"))))
    return windows


def _checks(during: object) -> list[_Mark]:
    marks = []
    for state in lenient.items(during):
        at = lenient.number(state.get("at_s"))
        if at is None:
            continue
        ok = state.get("steady_state_met") is True
        failed = [
            str(lenient.mapping(run.get("activity")).get("name") or "probe")
            for run in lenient.items(state.get("probes"))
            if run.get("tolerance_met") is not True
        ]
        text = "hypothesis met" if ok else "hypothesis not met: " + ", ".join(failed)
        marks.append(_Mark(at, ok, f"t+{at:.2f} s: {text}"))
    return marks


def _deviations(deviations: object) -> list[_Mark]:
    marks = []
    for deviation in lenient.items(deviations):
        at = lenient.number(deviation.get("at_s"))
        if at is not None:
            text = deviation.get("explanation") or deviation.get("probe") or "deviation"
            marks.append(_Mark(at, False, f"t+{at:.2f} s: deviation: {text}"))
    return marks


def _halt(halted: object) -> _Mark | None:
    halt = lenient.mapping(halted)
    at = lenient.number(halt.get("breached_at_s"))
    if at is None:
        at = lenient.number(halt.get("checked_at_s"))
    if at is None:
        return None
    text = halt.get("explanation") or halt.get("probe") or "halt condition breached"
    return _Mark(at, False, f"t+{at:.2f} s: halted: {text}")


# -- scales ------------------------------------------------------------------------------


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Scale:
    span = (hi - lo) or 1.0

    def scale(value: float) -> float:
        return round(out_lo + (value - lo) / span * (out_hi - out_lo), 1)

    return scale


def _step(span: float, count: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``count`` ticks over ``span``."""
    raw = span / count if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _nice_range(lo: float, hi: float) -> tuple[float, float]:
    step = _step(hi - lo, TIME_TICKS)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = _step(hi - lo, count)
    count = math.ceil(round((hi - lo) / step, 9))
    return [lo + i * step for i in range(max(count, 1) + 1)]


def _label(value: float) -> str:
    return f"{value:g}"


# -- drawing -----------------------------------------------------------------------------


def _grid(
    x: Scale,
    t0: float,
    t1: float,
    y_ms: Scale,
    ms_ticks: list[float],
    y_rate: Scale,
    rate_top: float,
) -> list[str]:
    text = COLORS["text"]
    parts = []
    for ms in ms_ticks:
        y = y_ms(ms)
        parts.append(
            f'<line x1="{LEFT}" y1="{y}" x2="{RIGHT}" y2="{y}" stroke="{COLORS["grid"]}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" fill="{text}">{_label(ms)}</text>'
        )
    for rate in _ticks(0.0, rate_top):
        parts.append(
            f'<text x="{RIGHT + 6}" y="{y_rate(rate) + 4}" fill="{COLORS["errors"]}">'
            f"{_label(round(rate * 100, 2))}%</text>"
        )
    for t in _ticks(t0, t1, TIME_TICKS):
        parts.append(
            f'<line x1="{x(t)}" y1="{BOTTOM}" x2="{x(t)}" y2="{BOTTOM + 4}" stroke="{text}"/>'
            f'<text x="{x(t)}" y="{BOTTOM + 15}" text-anchor="middle" fill="{text}">'
            f"{_label(round(t, 6))}</text>"
        )
    if t0 < 0 < t1:
        parts.append(
            f'<line x1="{x(0)}" y1="{TOP}" x2="{x(0)}" y2="{BOTTOM}" stroke="#9ca3af" '
            f'stroke-dasharray="2 3"/>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" '
        f'fill="none" stroke="#9ca3af"/>'
        f'<text x="{LEFT - 44}" y="{(TOP + BOTTOM) / 2}" fill="{text}" text-anchor="middle" '
        f'transform="rotate(-90 {LEFT - 44} {(TOP + BOTTOM) / 2})">latency (ms)</text>'
        f'<text x="{LEFT - 6}" y="{CHECK_LANE + 4}" text-anchor="end" fill="{text}">checks</text>'
        f'<text x="{(LEFT + RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle" fill="{text}">'
        "seconds since the method started (t+0)</text>"
    )
    return parts


def _fault_windows(x: Scale, windows: list[_Window], t1: float) -> list[str]:
    parts = []
    for row, window in enumerate(windows):
        left, right = x(window.start), x(t1 if window.end is None else window.end)
        width = max(right - left, 2.0)
        room = max(int(width / 6.2), 1)
        label = window.label if len(window.label) <= room else window.label[: room - 1] + "…"
        until = "the end" if window.end is None else f"t+{window.end:.2f} s"
        parts.append(
            f"<g><title>{escape(window.label)}: t+{window.start:.2f} s to {until}</title>"
            f'<rect x="{left}" y="{TOP}" width="{round(width, 1)}" height="{BOTTOM - TOP}" '
            f'fill="{COLORS["fault"]}" fill-opacity="0.18" stroke="{COLORS["fault"]}" '
            f'stroke-opacity="0.6"/>'
            f'<text x="{left + 3}" y="{TOP + 12 + 12 * (row % 3)}" fill="#92400e">'
            f"{escape(label)}</text></g>"
        )
    return parts


def _polyline(points: list[tuple[float, float]], color: str, dash: str = "") -> str:
    coords = " ".join(f"{px},{py}" for px, py in points)
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{dashes}/>'
        + "".join(f'<circle cx="{px}" cy="{py}" r="2.5" fill="{color}"/>' for px, py in points)
    )


def _series(x: Scale, y_ms: Scale, y_rate: Scale, points: list[_Point]) -> list[str]:
    p50 = [(x(p.t), y_ms(p.p50_ms)) for p in points if p.p50_ms is not None]
    p99 = [(x(p.t), y_ms(p.p99_ms)) for p in points if p.p99_ms is not None]
    errors = [(x(p.t), y_rate(p.error_rate)) for p in points if p.error_rate is not None]
    parts = [
        _polyline(errors, COLORS["errors"], "5 3"),
        _polyline(p99, COLORS["p99"]),
        _polyline(p50, COLORS["p50"]),
    ]
    for p in points:
        facts = [
            f"{name} {value:.0f} ms"
            for name, value in (("p50", p.p50_ms), ("p99", p.p99_ms))
            if value is not None
        ]
        if p.error_rate is not None:
            facts.append(f"errors {p.error_rate:.1%}")
        left = x(p.t - 0.5)
        parts.append(
            f'<rect x="{left}" y="{TOP}" width="{round(x(p.t + 0.5) - left, 1)}" '
            f'height="{BOTTOM - TOP}" fill="#000000" fill-opacity="0">'
            f"<title>t+{p.t - 0.5:.2f} s to t+{p.t + 0.5:.2f} s: {', '.join(facts)}</title></rect>"
        )
    return parts


def _marks(x: Scale, checks: list[_Mark], deviations: list[_Mark], halt: _Mark | None) -> list[str]:
    parts = []
    for mark in deviations:
        parts.append(
            f"<g><title>{escape(mark.text)}</title>"
            f'<line x1="{x(mark.t)}" y1="{TOP}" x2="{x(mark.t)}" y2="{BOTTOM}" '
            f'stroke="{COLORS["deviation"]}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<path d="M{x(mark.t) - 5},{TOP - 8} h10 l-5,8 z" fill="{COLORS["deviation"]}"/></g>'
        )
    if halt is not None:
        parts.append(
            f"<g><title>{escape(halt.text)}</title>"
            f'<line x1="{x(halt.t)}" y1="{TOP}" x2="{x(halt.t)}" y2="{BOTTOM}" '
            f'stroke="{COLORS["halt"]}" stroke-width="3"/>'
            f'<text x="{x(halt.t) + 4}" y="{BOTTOM - 6}" fill="{COLORS["halt"]}" '
            f'font-weight="bold">halted</text></g>'
        )
    for mark in checks:
        cx, cy = x(mark.t), CHECK_LANE
        if mark.ok:
            shape = f'<circle cx="{cx}" cy="{cy}" r="5" fill="{COLORS["pass"]}"/>'
        else:
            shape = (
                f'<path d="M{cx - 5},{cy - 5} l10,10 M{cx + 5},{cy - 5} l-10,10" '
                f'stroke="{COLORS["fail"]}" stroke-width="2.5"/>'
            )
        parts.append(f"<g><title>{escape(mark.text)}</title>{shape}</g>")
    return parts


def _legend() -> list[str]:
    entries = [
        ("p50", f'<line x1="0" y1="0" x2="16" y2="0" stroke="{COLORS["p50"]}" stroke-width="2"/>'),
        ("p99", f'<line x1="0" y1="0" x2="16" y2="0" stroke="{COLORS["p99"]}" stroke-width="2"/>'),
        (
            "error rate",
            f'<line x1="0" y1="0" x2="16" y2="0" stroke="{COLORS["errors"]}" stroke-width="2" '
            'stroke-dasharray="5 3"/>',
        ),
        (
            "fault",
            f'<rect x="0" y="-5" width="16" height="10" fill="{COLORS["fault"]}" '
            'fill-opacity="0.3"/>',
        ),
        ("check met", f'<circle cx="8" cy="0" r="4" fill="{COLORS["pass"]}"/>'),
        (
            "check failed",
            f'<path d="M4,-4 l8,8 M12,-4 l-8,8" stroke="{COLORS["fail"]}" stroke-width="2"/>',
        ),
        ("deviation", f'<path d="M3,-5 h10 l-5,8 z" fill="{COLORS["deviation"]}"/>'),
    ]
    parts: list[str] = []
    left = float(LEFT)
    for name, symbol in entries:
        parts.append(
            f'<g transform="translate({left:g},16)">{symbol}'
            f'<text x="20" y="4" fill="{COLORS["text"]}">{name}</text></g>'
        )
        left += 26 + 6.5 * len(name) + 12
    return parts
