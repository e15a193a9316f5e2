"""The exploration's part of ``report.html``: the held share and the gate, the rounds, a
matrix per explored test (a row per dependency, a column per fault, each cell the run's
outcome), its combinations, and every broken or hung run with the command that replays
it. Read leniently from ``summary.json``'s ``explore`` section."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from pytest_chaos.explore.catalogue import CATALOGUE
from pytest_chaos.report import lenient
from pytest_chaos.report.markup import slug

#: How each outcome shows in a cell, and the word for it.
MARKS = {
    "held": ("✓", "held"),
    "expected": ("E", "expected"),
    "broke": ("✗", "broke"),
    "hung": ("…", "hung"),
    "error": ("!", "error"),
    "not run": ("–", "not run"),
}
PROBLEMS = ("broke", "hung")


def section(explore: object) -> str:
    """The exploration section, or "" for a session that explored nothing."""
    data = lenient.mapping(explore)
    tests = lenient.items(data.get("tests"))
    if not tests:
        return ""
    parts = [
        '<section class="explore" id="explore"><h2>Exploration</h2>',
        _headline(data),
        _rounds(lenient.items(data.get("rounds"))),
        _legend(),
    ]
    problems: list[Mapping[str, Any]] = []
    for number, test in enumerate(tests, 1):
        parts.append(_test(number, test))
        problems.extend(
            run for run in lenient.items(test.get("runs")) if run.get("outcome") in PROBLEMS
        )
    parts.append(_problems(problems))
    parts.append("</section>")
    return "\n".join(parts)


def _headline(data: Mapping[str, Any]) -> str:
    share = lenient.number(data.get("held_share"))
    counts = lenient.mapping(data.get("counts"))
    badges = "".join(
        f'<span class="total o-{_css(outcome)}">{int(count)} {escape(outcome)}</span>'
        for outcome, value in counts.items()
        if (count := lenient.number(value))
    )
    gate = lenient.mapping(data.get("gate"))
    minimum = lenient.number(gate.get("min_held"))
    verdict = ""
    if minimum is not None:
        good = gate.get("passed") is True
        verdict = (
            f'<span class="gate {"good" if good else "bad"}">explore gate '
            f"{'passed' if good else 'failed'}</span> minimum held share {minimum:g}%"
        )
        if gate.get("failure"):
            verdict += f"<ul><li>{escape(str(gate['failure']))}</li></ul>"
    held = "—" if share is None else f"{share:g}%"
    stopped = data.get("stopped")
    return (
        f'<div class="explore-head"><div class="share"><span class="big" id="held-share">'
        f"{held}</span><span>of the runs held or did as declared</span></div>"
        f'<div><p class="totals">{badges}</p><div class="gates">{verdict}</div>'
        + (f'<p class="note">Stopped early: {escape(str(stopped))}</p>' if stopped else "")
        + "</div></div>"
    )


def _rounds(rounds: list[Mapping[str, Any]]) -> str:
    if not rounds:
        return ""
    rows = []
    for record in rounds:
        size = lenient.number(record.get("faults"))
        what = "baselines" if size == 0 else "single faults" if size == 1 else f"{size:g} faults"
        pruned = lenient.mapping(record.get("pruned"))
        why = ", ".join(f"{escape(str(k))} {escape(str(v))}" for k, v in pruned.items()) or "—"
        rows.append(
            f"<tr><td>{what}</td><td class=num>{_plain(record.get('ran'))}</td>"
            f"<td class=num>{_plain(record.get('planned'))}</td>"
            f"<td class=num>{_plain(record.get('exhaustive'))}</td><td>{why}</td></tr>"
        )
    return (
        '<table class="rounds"><thead><tr><th>round</th><th>ran</th><th>planned</th>'
        "<th>possible</th><th>pruned</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _legend() -> str:
    marks = "".join(
        f'<span class="cell o-{_css(outcome)}">{mark}</span> {word} '
        for outcome, (mark, word) in MARKS.items()
    )
    return f'<p class="legend">{marks}</p>'


def _test(number: int, test: Mapping[str, Any]) -> str:
    name = escape(str(test.get("test", "?")))
    head = f'<div class="explored" id="explored-{number}"><h3>{name}</h3>'
    if test.get("unexplored"):
        return f'{head}<p class="note">Not explored: {escape(str(test["unexplored"]))}</p></div>'
    runs = lenient.items(test.get("runs"))
    singles = [run for run in runs if len(lenient.items(run.get("faults"))) == 1]
    combined = [run for run in runs if len(lenient.items(run.get("faults"))) > 1]
    held, judged = lenient.number(test.get("held")), lenient.number(test.get("judged"))
    share = f" · {held:g} of {judged:g} runs held or did as declared" if judged else ""
    return (
        f"{head}<p class=facts>baseline {escape(str(test.get('baseline')))}{share}</p>"
        f"{_matrix(singles)}{_combinations(combined)}</div>"
    )


def _matrix(runs: list[Mapping[str, Any]]) -> str:
    """A row per dependency, a column per fault, both in the catalogue's order (a call
    site's exceptions last)."""
    if not runs:
        return '<p class="note">No single fault was run.</p>'
    rows: dict[str, dict[str, Mapping[str, Any]]] = {}
    for run in runs:
        fault = lenient.items(run.get("faults"))[0]
        row = f"{fault.get('kind')} {fault.get('dependency')}"
        rows.setdefault(row, {})[str(fault.get("fault"))] = run
    named = {name for cells in rows.values() for name in cells}
    columns = [kind.id for kind in CATALOGUE if kind.id in named]
    columns = list(dict.fromkeys(columns)) + sorted(named - set(columns))
    head = "".join(f"<th>{escape(column)}</th>" for column in columns)
    body = []
    for row, cells in sorted(rows.items()):
        tds = "".join(_cell(cells.get(column)) for column in columns)
        body.append(f"<tr><th class=dep>{escape(row)}</th>{tds}</tr>")
    return (
        f'<table class="matrix"><thead><tr><th>dependency</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _cell(run: Mapping[str, Any] | None) -> str:
    if run is None:
        return '<td class="cell none"></td>'
    outcome = str(run.get("outcome"))
    mark, word = MARKS.get(outcome, ("?", outcome))
    faults = lenient.items(run.get("faults"))
    does = str(faults[0].get("does", "")) if faults else ""
    title = f"{word}: {does}" + (f"\n{run['message']}" if run.get("message") else "")
    content = escape(mark)
    if outcome in PROBLEMS:
        content = f'<a href="#{_anchor(run)}">{content}</a>'
    return f'<td class="cell o-{_css(outcome)}" title="{escape(title)}">{content}</td>'


def _combinations(runs: list[Mapping[str, Any]]) -> str:
    if not runs:
        return ""
    rows = []
    for run in runs:
        faults = " + ".join(
            f"{f.get('fault')} on {f.get('kind')} {f.get('dependency')}"
            for f in lenient.items(run.get("faults"))
        )
        outcome = str(run.get("outcome"))
        mark, word = MARKS.get(outcome, ("?", outcome))
        link = f'<a href="#{_anchor(run)}">{word}</a>' if outcome in PROBLEMS else word
        rows.append(
            f'<tr><td>{escape(faults)}</td><td class="cell o-{_css(outcome)}">{mark}</td>'
            f"<td>{link}</td></tr>"
        )
    return (
        f"<details><summary>{len(runs)} combination(s)</summary><table class=combos>"
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )


def _problems(runs: list[Mapping[str, Any]]) -> str:
    if not runs:
        return "<h3>Broken and hung runs</h3><p>None: every run held or did as declared.</p>"
    parts = [f"<h3>Broken and hung runs ({len(runs)})</h3>"]
    for run in runs:
        outcome = str(run.get("outcome"))
        parts.append(
            f'<div class="run" id="{_anchor(run)}"><h4><span class="cell o-{_css(outcome)}">'
            f"{escape(MARKS.get(outcome, ('?', outcome))[0])}</span> {escape(outcome)} "
            f"{escape(str(run.get('nodeid', '?')))}</h4>"
        )
        if run.get("message"):
            parts.append(f'<pre class="message">{escape(str(run["message"]))}</pre>')
        if run.get("replay"):
            parts.append(
                '<div class="replay"><span>replay</span>'
                f"<code>{escape(str(run['replay']))}</code>"
                '<button type="button" class="copy">Copy</button></div>'
            )
        parts.append("</div>")
    return "\n".join(parts)


def _anchor(run: Mapping[str, Any]) -> str:
    return "run-" + slug(str(run.get("nodeid", "")))


def _css(text: str) -> str:
    return slug(text.lower())


def _plain(value: object) -> str:
    number = lenient.number(value)
    return "—" if number is None else f"{number:g}"


CSS = """
.explore { margin: 24px 0; padding: 16px 20px; background: #fff;
  border: 1px solid #e5e7eb; border-radius: 8px; }
.explore h2 { margin-top: 0; }
.explore-head { display: flex; gap: 24px; align-items: center; }
.share { display: flex; flex-direction: column; align-items: center; min-width: 150px;
  padding: 10px 16px; border-radius: 10px; background: #f3f4f6; }
.share .big { font-size: 40px; font-weight: 700; line-height: 1.1; }
table.matrix { width: auto; }
table.matrix th.dep { white-space: nowrap; }
td.cell, span.cell { text-align: center; font-weight: 700; min-width: 2.2em; }
span.cell { display: inline-block; border-radius: 4px; padding: 0 4px; }
.o-held { background: #dcfce7; color: var(--good); }
.o-expected { background: #dbeafe; color: #1d4ed8; }
.o-broke { background: #fee2e2; color: var(--bad); }
.o-hung { background: #fef3c7; color: var(--warn); }
.o-error, .o-not-run { background: #f3f4f6; color: var(--mute); }
td.cell a { color: inherit; }
.explored { margin: 18px 0; }
.legend { color: var(--mute); }
.run { margin: 12px 0; }
"""
