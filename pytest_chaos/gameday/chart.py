"""The score of each game day over time, as an SVG line chart coloured by status."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from pytest_chaos.gameday.history import RunRecord

#: The most recent scored runs the chart shows.
CHART_RUNS = 30
STATUS_COLORS = {"held": "#16a34a", "broke": "#d97706", "halted": "#dc2626"}

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 50, 690, 20, 210


def score_chart(runs: Sequence[RunRecord], *, standalone: bool = True) -> str:
    """The score of each game day (dry runs and unscored runs left out) as an SVG line
    chart, 0 to 100, coloured by status; ``standalone`` adds the XML namespace header a
    file needs."""
    scored = [run for run in runs if not run["dry_run"] and run["score"] is not None][-CHART_RUNS:]
    namespace = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    out = [
        f'<svg{namespace} width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'role="img" aria-label="game-day score over time" font-family="system-ui, sans-serif" '
        'font-size="11">'
    ]
    for score in (0, 25, 50, 75, 100):
        y = _y(score)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{RIGHT}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#374151">{score}</text>'
        )
    if not scored:
        out.append(
            f'<text x="{(LEFT + RIGHT) / 2:.0f}" y="{(TOP + BOTTOM) / 2:.0f}" text-anchor="middle" '
            'fill="#6b7280">no scored game day yet</text>'
        )
    else:
        points = [
            (_x(index, len(scored)), _y(float(run["score"] or 0)))
            for index, run in enumerate(scored)
        ]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="2"/>')
        for (x, y), run in zip(points, scored, strict=True):
            color = STATUS_COLORS.get(run["status"], "#6b7280")
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color}" data-run="{escape(run["id"])}">'
                f"<title>{escape(run['started'])}: {run['score']:g} ({escape(run['status'])})</title></circle>"
            )
            out.append(
                f'<text x="{x:.1f}" y="{BOTTOM + 16}" text-anchor="middle" fill="#374151">'
                f"{escape(run['started'][5:16].replace('T', ' '))}</text>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _x(index: int, count: int) -> float:
    if count == 1:
        return (LEFT + RIGHT) / 2
    return LEFT + 20 + index * (RIGHT - LEFT - 40) / (count - 1)


def _y(score: float) -> float:
    return BOTTOM - (BOTTOM - TOP) * max(0.0, min(score, 100.0)) / 100
