"""The HTML report of a chaos session: one self-contained page people open from CI artefacts.

:func:`render` turns a session summary (``summary.json``, format 1) and the journals it lists
into a page with the score and gates first, a table of the tests, the exploration's matrix
(when tests were explored), then one section per experiment: its verdict, its timeline chart, deviations, faults, probe checks and the
command that replays it. Styles, charts and the one small script are inline, and a
Content-Security-Policy forbids fetching anything, so the page works offline and from a
zip. :func:`write` does the same from a report directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from pytest_chaos.core.errors import ChaosError
from pytest_chaos.experiment.journal import read_journal
from pytest_chaos.report import explore_html, lenient
from pytest_chaos.report.chart import timeline_svg
from pytest_chaos.report.layout import FORMAT, SUMMARY
from pytest_chaos.report.markup import slug

__all__ = ["REPORT", "SUMMARY", "ReportError", "render", "write"]

REPORT = "report.html"
#: The summary formats this version renders: the one it writes.
FORMATS = (FORMAT,)
ALWAYS_COUNTED = ("tests", "passed")
OUTPUT_CHARS = 160


class ReportError(ChaosError, ValueError):
    """A report directory cannot be rendered: the message names the path and what is wrong."""


# -- from a directory --------------------------------------------------------------------


def write(directory: Path) -> Path:
    """Render ``directory/summary.json`` and the journals it lists into
    ``directory/report.html``; its path. Journals that cannot be read get a note."""
    summary = _read_summary(Path(directory))
    journals: dict[str, Mapping[str, Any]] = {}
    for result in lenient.items(summary.get("results")):
        for name in _strings(result.get("journals")):
            journal = _read_journal(Path(directory), name)
            if journal is not None:
                journals[name] = journal
    path = Path(directory) / REPORT
    partial = path.with_name(f".{REPORT}.{os.getpid()}.tmp")
    partial.write_text(render(summary, journals), encoding="utf-8")
    partial.replace(path)
    return path


def _read_summary(directory: Path) -> Mapping[str, Any]:
    path = directory / SUMMARY
    if not directory.is_dir():
        raise ReportError(f"{directory}: not a directory (expected a --chaos-report directory)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(
            f"{path}: no such file; run pytest with --chaos-report {directory} first"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot be read: {error}") from None
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(summary, dict):
        raise ReportError(f"{path}: expected a JSON object, found {type(summary).__name__}")
    if summary.get("format") not in FORMATS:
        raise ReportError(
            f"{path}: format {summary.get('format')!r} is not one this version reads "
            f"(expected {', '.join(map(str, FORMATS))})"
        )
    if not isinstance(summary.get("results", []), list):
        raise ReportError(f"{path}: 'results' must be a list of test results")
    return summary


def _read_journal(directory: Path, name: str) -> Mapping[str, Any] | None:
    """The journal at ``name`` (relative to ``directory``, never outside it), or None."""
    path = directory / name
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    try:
        return read_journal(path)
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON, or not an object
        return None


# -- the page ----------------------------------------------------------------------------


def render(summary: Mapping[str, Any], journals: Mapping[str, Mapping[str, Any]]) -> str:
    """The report page for ``summary``; ``journals`` maps the relative paths listed in
    ``results[*].journals`` to their content (a listed path missing here gets a note)."""
    results = lenient.items(summary.get("results"))
    sections = [_experiment(number, result, journals) for number, result in enumerate(results, 1)]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>Chaos report{_score_title(summary.get('score'))}</title>",
            f"<style>{CSS}{explore_html.CSS}</style></head><body>",
            _header(summary),
            "<main>",
            _table(results),
            explore_html.section(summary.get("explore")),
            *sections,
            "</main>",
            f"<script>{SCRIPT}</script>",
            "</body></html>",
            "",
        ]
    )


def _score_title(score: object) -> str:
    value = lenient.number(score)
    return "" if value is None else f": score {_score(value)}"


def _header(summary: Mapping[str, Any]) -> str:
    gates = lenient.mapping(summary.get("gates"))
    passed = gates.get("passed")
    state = {True: "good", False: "bad"}.get(passed, "none") if isinstance(passed, bool) else "none"
    score = lenient.number(summary.get("score"))
    big = "—" if score is None else _score(score)
    note = "resilience score" if score is not None else "no chaos tests, no score"
    facts = []
    if summary.get("created"):
        facts.append(f"created {escape(str(summary['created']))}")
    if summary.get("seed") is not None:
        facts.append(f"seed <code>{escape(str(summary['seed']))}</code>")
    if summary.get("dry_run") is True:
        facts.append('<strong class="dry">dry run: no fault was applied</strong>')
    return (
        f'<header><div class="score {state}"><span class="big" id="score">{big}</span>'
        f"<span>{note}</span></div>"
        f'<div class="about"><h1>Chaos report</h1><p>{" · ".join(facts)}</p>'
        f"{_gates(gates)}{_totals(lenient.mapping(summary.get('totals')))}</div></header>"
    )


def _gates(gates: Mapping[str, Any]) -> str:
    limits = []
    for key, label in (("min_score", "minimum score"), ("max_deviated", "maximum deviated")):
        value = gates.get(key)
        if value is not None:
            limits.append(f"{label} {escape(_plain(value))}")
    passed = gates.get("passed")
    if passed is True:
        verdict = '<span class="gate good">gates passed</span>'
    elif passed is False:
        verdict = '<span class="gate bad">gates failed</span>'
    else:
        verdict = '<span class="gate none">no gates set</span>' if not limits else ""
    failures = "".join(f"<li>{escape(text)}</li>" for text in _strings(gates.get("failures")))
    return (
        f'<div class="gates">{verdict} {escape("; ".join(limits))}'
        f"{f'<ul>{failures}</ul>' if failures else ''}</div>"
    )


def _totals(totals: Mapping[str, Any]) -> str:
    badges = []
    for key, value in totals.items():
        count = lenient.number(value)
        if count is not None and (count or key in ALWAYS_COUNTED):
            label = "test" if key == "tests" and count == 1 else key
            badges.append(f'<span class="total {_css(key)}">{_plain(count)} {escape(label)}</span>')
    return f'<p class="totals">{"".join(badges)}</p>' if badges else ""


def _table(results: list[Mapping[str, Any]]) -> str:
    if not results:
        return '<p class="note">No chaos test ran in this session.</p>'
    rows = []
    for number, result in enumerate(results, 1):
        faults = "<br>".join(escape(fault) for fault in _strings(result.get("faults"))) or "—"
        title = result.get("title")
        rows.append(
            f'<tr><td><a href="#experiment-{number}">{escape(str(result.get("nodeid", "?")))}</a>'
            f"{f'<div class=sub>{escape(str(title))}</div>' if title else ''}</td>"
            f"<td>{faults}</td><td>{_verdict(result.get('verdict'))}</td>"
            f'<td class="num">{escape(_plain(result.get("weight", "")))}</td>'
            f'<td class="num"><code>{escape(_plain(result.get("seed", "")))}</code></td></tr>'
        )
    return (
        '<table class="results"><thead><tr><th>test</th><th>faults</th><th>verdict</th>'
        f"<th>weight</th><th>seed</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _experiment(
    number: int, result: Mapping[str, Any], journals: Mapping[str, Mapping[str, Any]]
) -> str:
    facts = []
    for key, label in (("weight", "weight"), ("seed", "seed")):
        if result.get(key) is not None:
            facts.append(f"{label} {escape(_plain(result[key]))}")
    duration = lenient.number(result.get("duration_s"))
    if duration is not None:
        facts.append(f"{duration:.1f} s")
    checks = lenient.mapping(result.get("checks"))
    if lenient.number(checks.get("total")):
        facts.append(f"{_plain(checks.get('passed'))}/{_plain(checks.get('total'))} checks met")
    tags = _strings(result.get("tags"))
    if tags:
        facts.append("tags: " + ", ".join(escape(tag) for tag in tags))
    parts = [
        f'<section class="experiment" id="experiment-{number}">',
        f"<h2>{_verdict(result.get('verdict'))} {escape(str(result.get('nodeid', '?')))}</h2>",
    ]
    if result.get("title"):
        parts.append(f'<p class="sub">{escape(str(result["title"]))}</p>')
    parts.append(f'<p class="facts">{" · ".join(facts)}</p>')
    if result.get("message"):
        parts.append(f'<pre class="message">{escape(str(result["message"]))}</pre>')
    if result.get("replay"):
        parts.append(
            '<div class="replay"><span>replay</span>'
            f"<code>{escape(str(result['replay']))}</code>"
            '<button type="button" class="copy">Copy</button></div>'
        )
    names = _strings(result.get("journals"))
    for name in names:
        journal = journals.get(name)
        if journal is None:
            parts.append(
                f'<p class="note">Journal <code>{escape(name)}</code> is missing or unreadable.</p>'
            )
        else:
            parts.append(_journal(journal, several=len(names) > 1))
    if not names:
        parts.append('<p class="note">No journal was recorded for this test.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _journal(journal: Mapping[str, Any], several: bool) -> str:
    extra = lenient.mapping(journal.get("pytest_chaos"))
    parts = ['<div class="journal">']
    if several:
        title = lenient.mapping(journal.get("experiment")).get("title") or "experiment"
        parts.append(f"<h3>{escape(str(title))}</h3>")
    parts.append(f'<figure class="chart">{timeline_svg(journal)}</figure>')
    parts.append(_load(lenient.mapping(extra.get("load"))))
    halted = lenient.mapping(extra.get("halted"))
    if halted:
        at = lenient.number(halted.get("breached_at_s"))
        when = f" at {_t(at)}" if at is not None else ""
        why = halted.get("explanation") or halted.get("probe") or "a halt condition was breached"
        parts.append(f'<p class="halt">Halted{when}: {escape(str(why))}</p>')
    parts.append(_deviations(lenient.items(extra.get("deviations"))))
    parts.append(_faults(lenient.items(extra.get("timeline"))))
    parts.append(_checks(lenient.mapping(journal.get("steady_states"))))
    rollouts = lenient.items(extra.get("rollouts"))
    if rollouts:
        text = escape(json.dumps(rollouts, indent=1, default=str))
        parts.append(
            f"<details><summary>{len(rollouts)} canary rollout(s)</summary>"
            f"<pre>{text}</pre></details>"
        )
    parts.append("</div>")
    return "\n".join(parts)


def _load(load: Mapping[str, Any]) -> str:
    count = lenient.number(load.get("count"))
    if count is None:
        return ""
    latency = lenient.mapping(load.get("latency_ms"))
    facts = [f"{_plain(count)} requests", f"{_plain(load.get('errors', 0))} errors"]
    for key in ("p50", "p99"):
        value = lenient.number(latency.get(key))
        if value is not None:
            facts.append(f"{key} {value:.0f} ms")
    rps = lenient.number(load.get("throughput_rps"))
    if rps is not None:
        facts.append(f"{rps:.1f} requests/s")
    return f'<p class="facts">Load: {escape(", ".join(facts))}</p>'


def _deviations(deviations: list[Mapping[str, Any]]) -> str:
    if not deviations:
        return "<h4>Deviations</h4><p>No deviation was recorded.</p>"
    rows = "".join(
        f"<tr><td>{escape(str(d.get('phase', '')))}</td><td class=num>{_t(d.get('at_s'))}</td>"
        f"<td>{escape(str(d.get('probe', '')))}</td>"
        f"<td>{escape(str(d.get('explanation', '')))}</td></tr>"
        for d in deviations
    )
    return (
        f"<h4>Deviations ({len(deviations)})</h4><table><thead><tr><th>phase</th><th>at</th>"
        f"<th>probe</th><th>explanation</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _faults(timeline: list[Mapping[str, Any]]) -> str:
    if not timeline:
        return "<h4>Faults</h4><p>No fault on the timeline.</p>"
    rows = []
    for entry in timeline:
        problems = [str(entry[k]) for k in ("error", "end_error") if entry.get(k)]
        rows.append(
            f"<tr><td>{escape(str(entry.get('fault') or entry.get('kind') or 'fault'))}</td>"
            f"<td class=num>{_t(entry.get('applied_at_s'))}</td>"
            f"<td class=num>{_t(entry.get('ended_at_s'))}</td>"
            f"<td>{escape('; '.join(problems))}</td></tr>"
        )
    return (
        "<h4>Faults</h4><table><thead><tr><th>fault</th><th>applied</th><th>ended</th>"
        f"<th>problem</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _checks(states: Mapping[str, Any]) -> str:
    parts = ["<h4>Steady-state checks</h4>"]
    for phase in ("before", "after"):
        state = lenient.mapping(states.get(phase))
        if not state:
            parts.append(f"<p>{phase.capitalize()} the method: not checked.</p>")
            continue
        met = state.get("steady_state_met") is True
        rows = "".join(_probe_row(run) for run in lenient.items(state.get("probes")))
        parts.append(
            f"<p>{phase.capitalize()} the method: {_met(met)}</p>"
            "<table><thead><tr><th>probe</th><th>tolerance</th><th>met</th><th>output</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )
    during = lenient.items(states.get("during"))
    if during:
        held = sum(1 for state in during if state.get("steady_state_met") is True)
        parts.append(f"<p>During the method: met at {held} of {len(during)} checks.</p>")
    return "\n".join(parts)


def _probe_row(run: Mapping[str, Any]) -> str:
    activity = lenient.mapping(run.get("activity"))
    met = run.get("tolerance_met") is True
    output = run.get("deviation") or run.get("exception") or run.get("output")
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    if len(text) > OUTPUT_CHARS:
        text = text[: OUTPUT_CHARS - 1] + "…"
    return (
        f"<tr><td>{escape(str(activity.get('name', 'probe')))}</td>"
        f"<td><code>{escape(json.dumps(activity.get('tolerance'), default=str))}</code></td>"
        f"<td>{_met(met)}</td><td><code>{escape(text)}</code></td></tr>"
    )


# -- small pieces ------------------------------------------------------------------------


def _verdict(verdict: object) -> str:
    text = str(verdict) if verdict else "unknown"
    return f'<span class="verdict {_css(text)}">{escape(text)}</span>'


def _met(met: bool) -> str:
    return '<span class="met">✓ met</span>' if met else '<span class="unmet">✗ not met</span>'


def _css(text: str) -> str:
    """A CSS class from a verdict or a total's name: ``not steady`` becomes ``v-not-steady``."""
    return "v-" + slug(text.lower())


def _t(value: object) -> str:
    number = lenient.number(value)
    return "—" if number is None else f"t+{number:.2f} s"


def _score(score: float) -> str:
    return f"{round(score, 1):g}"


def _plain(value: object) -> str:
    """A number as people write it (``455505813``, ``2.5``), anything else as text."""
    number = lenient.number(value)
    if number is None:
        return str(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _strings(value: object) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [str(item) for item in value if item is not None]


CSS = """
:root { color-scheme: light; --good: #15803d; --bad: #b91c1c; --warn: #b45309; --mute: #6b7280; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #111827; background: #f9fafb; }
header { display: flex; gap: 24px; align-items: center; padding: 20px 28px;
  background: #fff; border-bottom: 1px solid #e5e7eb; }
h1 { margin: 0 0 4px; font-size: 22px; }
main { padding: 8px 28px 40px; max-width: 1100px; }
.score { display: flex; flex-direction: column; align-items: center; min-width: 150px;
  padding: 12px 18px; border-radius: 10px; background: #f3f4f6; color: var(--mute); }
.score .big { font-size: 56px; font-weight: 700; line-height: 1; }
.score.good { background: #dcfce7; color: var(--good); }
.score.bad { background: #fee2e2; color: var(--bad); }
.gate { font-weight: 600; padding: 1px 8px; border-radius: 4px; }
.gate.good { background: #dcfce7; color: var(--good); }
.gate.bad { background: #fee2e2; color: var(--bad); }
.gate.none { background: #f3f4f6; color: var(--mute); }
.gates ul { margin: 4px 0 0; color: var(--bad); }
.total { display: inline-block; margin-right: 6px; padding: 1px 8px; border-radius: 10px;
  background: #f3f4f6; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; background: #fff; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
  border-bottom: 1px solid #e5e7eb; }
th { font-weight: 600; color: var(--mute); }
td.num { white-space: nowrap; }
.sub { color: var(--mute); }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 4px; font-size: 13px;
  font-weight: 600; background: #f3f4f6; color: var(--mute); }
.v-passed { background: #dcfce7; color: var(--good); }
.v-deviated, .v-halted, .v-failed { background: #fee2e2; color: var(--bad); }
.v-not-steady, .v-error { background: #fef3c7; color: var(--warn); }
.experiment { margin: 24px 0; padding: 16px 20px; background: #fff;
  border: 1px solid #e5e7eb; border-radius: 8px; }
.experiment h2 { margin: 0; font-size: 17px; }
.experiment h4 { margin: 14px 0 2px; }
.facts { color: var(--mute); margin: 4px 0; }
pre { white-space: pre-wrap; background: #f3f4f6; padding: 8px 10px; border-radius: 6px; }
.message { border-left: 3px solid var(--bad); }
.replay { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
.replay code { flex: 1; padding: 6px 8px; background: #111827; color: #f9fafb;
  border-radius: 6px; overflow-x: auto; white-space: nowrap; }
.replay button { padding: 5px 12px; cursor: pointer; }
.chart { margin: 12px 0; overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; }
.halt { font-weight: 600; color: var(--bad); }
.met, .unmet { white-space: nowrap; }
.met { color: var(--good); } .unmet { color: var(--bad); font-weight: 600; }
.note { color: var(--warn); }
.dry { color: var(--warn); }
"""

SCRIPT = """
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button.copy");
  if (!button) return;
  var range = document.createRange();
  range.selectNodeContents(button.previousElementSibling);
  var selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  var copied = false;
  try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
  button.textContent = copied ? "Copied" : "Press Ctrl+C";
});
"""
