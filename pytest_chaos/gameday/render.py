"""The game-day report, in Markdown (for a wiki or a pull request) and HTML (one
self-contained file: inline CSS and SVG, nothing fetched): what was tried, what held, what
broke and how to replay it, observations, action items, and the score over time.

Both are rendered from the same findings, gathered from the run's record and the summaries
its repetitions wrote; a missing or partial summary leaves its part out, never the report.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, final

from pytest_chaos.gameday.chart import score_chart
from pytest_chaos.gameday.history import RepetitionRecord, RunRecord
from pytest_chaos.gameday.plan import Plan

CHART = "score.svg"
BROKEN = ("deviated", "halted", "not steady", "failed", "error")
EXIT_CODES = {
    0: "all tests passed",
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}
NOTES_PROMPT = (
    "What people saw during the game day: alerts that fired or did not, dashboards, "
    "surprises, decisions."
)

Summary = Mapping[str, Any] | None


@final
@dataclass
class Attempt:
    """One test in one repetition."""

    repetition: int
    seed: int | None
    verdict: str
    message: str | None
    replay: str | None


@final
@dataclass
class TestFindings:
    """One test across the repetitions: what it tried and how each attempt ended."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    nodeid: str
    title: str
    weight: int | None
    faults: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def broken(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if attempt.verdict in BROKEN]

    @property
    def held(self) -> bool:
        return bool(self.attempts) and all(a.verdict == "passed" for a in self.attempts)


@final
@dataclass(frozen=True)
class ActionItem:
    text: str
    owner: str
    runbook: str | None
    replay: str | None


@final
@dataclass(frozen=True)
class Findings:
    """Everything the report says, in the order it says it."""

    tests: list[TestFindings]
    observations: list[str]
    actions: list[ActionItem]


def describe_repetition(record: RepetitionRecord, wrote_summary: bool) -> str:
    """One line on how a repetition went: its score, its verdicts and pytest's exit."""
    code = record["exit_code"]
    meaning = EXIT_CODES.get(code, "killed") if code is not None else "did not end"
    if not wrote_summary:
        return f"pytest exited {code} ({meaning}) without a summary; see {record['directory']}/pytest.log"
    totals = record["totals"] or {}
    counts = ", ".join(f"{n} {key}" for key, n in totals.items() if n and key != "tests")
    score = "no score" if record["score"] is None else f"score {record['score']:g}"
    tests = totals.get("tests", 0)
    return f"{score}; {tests} chaos test(s): {counts or 'none'}; pytest exited {code} ({meaning})"


def findings(
    plan: Plan, record: RunRecord, summaries: Sequence[Summary], runs: Sequence[RunRecord]
) -> Findings:
    """What the report says about ``record``, its repetitions' ``summaries`` (in order) and
    the earlier ``runs``."""
    tests: dict[str, TestFindings] = {}
    gate_failures: list[str] = []
    for repetition, summary in zip(record["repetitions"], summaries, strict=True):
        if summary is None:
            continue
        gates = summary.get("gates") or {}
        for failure in gates.get("failures") or ():
            if failure not in gate_failures:
                gate_failures.append(str(failure))
        for result in summary.get("results") or ():
            nodeid = str(result.get("nodeid", "?"))
            test = tests.setdefault(
                nodeid,
                TestFindings(nodeid, str(result.get("title") or nodeid), result.get("weight")),
            )
            for fault in result.get("faults") or ():
                if fault not in test.faults:
                    test.faults.append(str(fault))
            test.attempts.append(
                Attempt(
                    repetition["number"],
                    result.get("seed", repetition["seed"]),
                    str(result.get("verdict", "?")),
                    result.get("message"),
                    _replay(plan, result.get("replay")),
                )
            )
    found = list(tests.values())
    return Findings(
        found,
        _observations(plan, record, summaries, runs, found, gate_failures),
        _actions(plan, record, summaries, found),
    )


def _replay(plan: Plan, command: Any) -> str | None:
    if not isinstance(command, str) or not command:
        return None
    return f"{shlex.join(['cd', str(plan.suite.directory)])} && {command}"


def _observations(
    plan: Plan,
    record: RunRecord,
    summaries: Sequence[Summary],
    runs: Sequence[RunRecord],
    tests: list[TestFindings],
    gate_failures: list[str],
) -> list[str]:
    said = []
    if record["dry_run"]:
        said.append(
            "A rehearsal (--dry-run): the probes ran and the faults were recorded, none was "
            "applied; the score says nothing about resilience."
        )
    if record["halt"] is not None:
        said.append(f"The game day halted: {record['halt']}; no repetition started after it.")
    ran = len(record["repetitions"])
    if ran < plan.repetitions:
        said.append(f"{ran} of {plan.repetitions} planned repetitions ran.")
    for repetition, summary in zip(record["repetitions"], summaries, strict=True):
        said.append(
            f"Repetition {repetition['number']} (seed {repetition['seed']}, "
            f"{repetition['duration_s']:g} s): {describe_repetition(repetition, summary is not None)}."
        )
    for test in tests:
        broken = test.broken
        if not broken:
            continue
        verdicts = sorted({attempt.verdict for attempt in broken})
        runs_with = f"{len(broken)} of {len(test.attempts)} repetitions"
        if len(broken) == len(test.attempts):
            kind = "every time: not the luck of a seed"
        else:
            seeds = ", ".join(str(attempt.seed) for attempt in broken)
            kind = f"only with seed(s) {seeds}: it depends on timing or the seed"
        said.append(f"{test.title!r} {' / '.join(verdicts)} in {runs_with}, {kind}.")
    for failure in gate_failures:
        said.append(f"Gate failed: {failure}.")
    if summaries and not tests and any(summary is not None for summary in summaries):
        said.append("No chaos test ran: check the plan's [suite] args and markers.")
    previous = [
        run
        for run in runs
        if run["id"] != record["id"] and not run["dry_run"] and run["score"] is not None
    ]
    if record["score"] is not None and previous and not record["dry_run"]:
        last = previous[-1]
        assert last["score"] is not None
        change = record["score"] - last["score"]
        trend = "unchanged" if change == 0 else f"{'up' if change > 0 else 'down'} {abs(change):g}"
        said.append(
            f"Score {record['score']:g}, {trend} from the previous game day "
            f"({last['score']:g} on {last['started']})."
        )
    return said


def _actions(
    plan: Plan, record: RunRecord, summaries: Sequence[Summary], tests: list[TestFindings]
) -> list[ActionItem]:
    owner = ", ".join(plan.owners) or "unassigned"
    runbook = ", ".join(plan.runbooks) or None
    actions = []
    if record["halt"] is not None:
        actions.append(
            ActionItem(f"Find out why the game day halted: {record['halt']}.", owner, runbook, None)
        )
    for repetition, summary in zip(record["repetitions"], summaries, strict=True):
        interrupted_by_halt = record["halt"] is not None and repetition["exit_code"] == 2
        if (repetition["exit_code"] not in (0, 1) or summary is None) and not interrupted_by_halt:
            actions.append(
                ActionItem(
                    f"Repetition {repetition['number']} did not run properly: "
                    f"{describe_repetition(repetition, summary is not None)}.",
                    owner,
                    runbook,
                    repetition["replay"],
                )
            )
    for test in tests:
        broken = test.broken
        if not broken:
            continue
        numbers = ", ".join(str(attempt.repetition) for attempt in broken)
        verdicts = " / ".join(sorted({attempt.verdict for attempt in broken}))
        actions.append(
            ActionItem(
                f"{test.title!r} ({test.nodeid}) {verdicts} in repetition(s) {numbers}: "
                "fix it, or record why it is accepted.",
                owner,
                runbook,
                broken[0].replay,
            )
        )
    return actions


# -- Markdown ----------------------------------------------------------------------------------


def markdown(
    plan: Plan, record: RunRecord, summaries: Sequence[Summary], runs: Sequence[RunRecord]
) -> str:
    """The report as Markdown; the chart is ``score.svg`` beside it."""
    found = findings(plan, record, summaries, runs)
    out = [f"# Game day: {plan.name}", ""]
    if plan.description:
        out += [plan.description, ""]
    out += ["| | |", "| --- | --- |"]
    out += [f"| {_cell(key)} | {_cell(value)} |" for key, value in _facts(plan, record)]
    out += ["", "## Repetitions", ""]
    out += [
        "| # | seed | score | result | replay | session report |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for repetition, summary in zip(record["repetitions"], summaries, strict=True):
        score = "" if repetition["score"] is None else f"{repetition['score']:g}"
        out.append(
            f"| {repetition['number']} | {repetition['seed']} | {score} | "
            f"{_cell(describe_repetition(repetition, summary is not None))} | "
            f"`{_cell(repetition['replay'])}` | "
            f"[report.html]({repetition['directory']}/report.html) |"
        )
    out += ["", "## What was tried", ""]
    if found.tests:
        out += ["| test | faults | weight | verdicts |", "| --- | --- | --- | --- |"]
        for test in found.tests:
            verdicts = ", ".join(f"{a.repetition}: {a.verdict}" for a in test.attempts)
            out.append(
                f"| {_cell(test.title)}<br>`{_cell(test.nodeid)}` | "
                f"{_cell('; '.join(test.faults) or 'none')} | {test.weight or ''} | {_cell(verdicts)} |"
            )
    else:
        out.append("No chaos test ran.")
    out += ["", "## What held", ""]
    held = [test for test in found.tests if test.held]
    out += [
        f"- {test.title} (`{test.nodeid}`): held in {len(test.attempts)} of {len(test.attempts)} repetitions"
        for test in held
    ] or ["Nothing held in every repetition."]
    out += ["", "## What broke", ""]
    broke = [test for test in found.tests if test.broken]
    if not broke:
        out.append("Nothing broke.")
    for test in broke:
        out += [
            f"### {test.title}",
            "",
            f"`{test.nodeid}`; faults: {'; '.join(test.faults) or 'none'}",
            "",
        ]
        for attempt in test.broken:
            out.append(
                f"- repetition {attempt.repetition}, seed {attempt.seed}: **{attempt.verdict}**"
            )
            if attempt.replay:
                out.append(f"  - replay: `{attempt.replay}`")
            if attempt.message:
                out += [
                    "",
                    "  ```text",
                    *(f"  {line}" for line in attempt.message.splitlines()),
                    "  ```",
                ]
        out.append("")
    out += ["", "## Observations", ""]
    out += [f"- {line}" for line in found.observations]
    out += ["", "### Notes", "", f"_{NOTES_PROMPT}_", "", "- ", ""]
    out += ["## Action items", ""]
    if not found.actions:
        out.append("None: everything held.")
    for action in found.actions:
        out.append(f"- [ ] {action.text} Owner: {action.owner}.")
        if action.runbook:
            out.append(f"  Runbook: {action.runbook}")
        if action.replay:
            out.append(f"  Replay: `{action.replay}`")
    out += ["", "## Score over time", "", f"![score over time]({CHART})", ""]
    out += ["| game day | started | status | score | report |", "| --- | --- | --- | --- | --- |"]
    for run in runs:
        score = "" if run["score"] is None else f"{run['score']:g}"
        status = run["status"] + (" (dry run)" if run["dry_run"] else "")
        out.append(
            f"| {run['id']} | {run['started']} | {status} | {score} | [{run['report']}]({run['report']}) |"
        )
    return "\n".join(out) + "\n"


def _facts(plan: Plan, record: RunRecord) -> list[tuple[str, str]]:
    suite = shlex.join(
        ["pytest", *plan.suite.args, *(["-m", plan.suite.markers] if plan.suite.markers else [])]
    )
    score = "none" if record["score"] is None else f"{record['score']:g} (mean of the repetitions)"
    status = record["status"].upper() + (" (dry run)" if record["dry_run"] else "")
    return [
        ("Status", status),
        ("Score", score),
        ("When (UTC)", f"{record['started']} to {record['finished']}"),
        ("Owners", ", ".join(plan.owners) or "none named"),
        ("Runbooks", ", ".join(plan.runbooks) or "none named"),
        ("Suite", f"{suite} in {plan.suite.directory}"),
        ("Toxiproxy", plan.targets.toxiproxy or "embedded"),
        ("DOCKER_HOST", plan.targets.docker_host or "from the environment"),
        ("Repetitions", f"{len(record['repetitions'])} of {plan.repetitions} ran"),
        ("Halted", record["halt"] or "no"),
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- HTML --------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#111827;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{border:1px solid #e5e7eb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f9fafb}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
pre{background:#f3f4f6;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
.status{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff;font-weight:600}
.held{background:#16a34a}.broke{background:#d97706}.halted{background:#dc2626}
.verdict-passed{color:#16a34a}.verdict-deviated,.verdict-halted,.verdict-failed,.verdict-error,
.verdict-not-steady{color:#dc2626;font-weight:600}.notes{min-height:6rem;border:1px dashed #9ca3af;
padding:.5rem}.muted{color:#6b7280}
"""


def html(
    plan: Plan, record: RunRecord, summaries: Sequence[Summary], runs: Sequence[RunRecord]
) -> str:
    """The report as one self-contained HTML page."""
    found = findings(plan, record, summaries, runs)
    sections = [
        _html_head(plan, record),
        _html_repetitions(record, summaries),
        _html_tried(found),
        _html_held(found),
        _html_broke(found),
        _html_observations(found),
        _html_actions(plan, found),
        _html_history(runs),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"


def _links(urls: Sequence[str]) -> str:
    return ", ".join(f'<a href="{escape(url)}">{escape(url)}</a>' for url in urls)


def _html_head(plan: Plan, record: RunRecord) -> list[str]:
    """The page's head, the title and status, and the facts of the run."""
    e = escape
    status = record["status"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>Game day: {e(plan.name)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>Game day: {e(plan.name)}</h1>",
        f'<p><span class="status {e(status)}">{e(status)}</span>'
        + (' <span class="muted">dry run</span>' if record["dry_run"] else "")
        + "</p>",
    ]
    if plan.description:
        parts.append(f"<p>{e(plan.description)}</p>")
    parts.append("<table>")
    for key, value in _facts(plan, record):
        value_html = _links(plan.runbooks) if key == "Runbooks" and plan.runbooks else e(value)
        parts.append(f"<tr><th>{e(key)}</th><td>{value_html}</td></tr>")
    parts.append("</table>")
    return parts


def _table(header: Sequence[str], rows: Iterable[str]) -> list[str]:
    """A table: its header cells, then rows already written as ``<tr>...</tr>``."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    return ["<table>", f"<tr>{head}</tr>", *rows, "</table>"]


def _html_repetitions(record: RunRecord, summaries: Sequence[Summary]) -> list[str]:
    e = escape
    rows = []
    for repetition, summary in zip(record["repetitions"], summaries, strict=True):
        score = "" if repetition["score"] is None else f"{repetition['score']:g}"
        rows.append(
            f"<tr><td>{repetition['number']}</td><td>{repetition['seed']}</td><td>{score}</td>"
            f"<td>{e(describe_repetition(repetition, summary is not None))}</td>"
            f"<td><code>{e(repetition['replay'])}</code></td>"
            f'<td><a href="{e(repetition["directory"])}/report.html">report.html</a></td></tr>'
        )
    header = ("#", "seed", "score", "result", "replay", "session report")
    return ['<h2 id="repetitions">Repetitions</h2>', *_table(header, rows)]


def _html_tried(found: Findings) -> list[str]:
    e = escape
    if not found.tests:
        return ['<h2 id="tried">What was tried</h2>', "<p>No chaos test ran.</p>"]
    rows = []
    for test in found.tests:
        faults = "".join(f"<li>{e(fault)}</li>" for fault in test.faults) or "<li>none</li>"
        verdicts = ", ".join(
            f'{a.repetition}: <span class="{_verdict_class(a.verdict)}">{e(a.verdict)}</span>'
            for a in test.attempts
        )
        rows.append(
            f"<tr><td>{e(test.title)}<br><code>{e(test.nodeid)}</code></td>"
            f"<td><ul>{faults}</ul></td><td>{test.weight or ''}</td><td>{verdicts}</td></tr>"
        )
    header = ("test", "faults", "weight", "verdicts")
    return ['<h2 id="tried">What was tried</h2>', *_table(header, rows)]


def _html_held(found: Findings) -> list[str]:
    e = escape
    held = [test for test in found.tests if test.held]
    if not held:
        return ['<h2 id="held">What held</h2>', "<p>Nothing held in every repetition.</p>"]
    return [
        '<h2 id="held">What held</h2>',
        "<ul>",
        *(
            f"<li>{e(test.title)} (<code>{e(test.nodeid)}</code>): held in "
            f"{len(test.attempts)} of {len(test.attempts)} repetitions</li>"
            for test in held
        ),
        "</ul>",
    ]


def _html_broke(found: Findings) -> list[str]:
    e = escape
    parts = ['<h2 id="broke">What broke</h2>']
    broke = [test for test in found.tests if test.broken]
    if not broke:
        parts.append("<p>Nothing broke.</p>")
    for test in broke:
        parts.append(f"<h3>{e(test.title)}</h3>")
        parts.append(
            f"<p><code>{e(test.nodeid)}</code>; faults: {e('; '.join(test.faults) or 'none')}</p><ul>"
        )
        for attempt in test.broken:
            parts.append(
                f"<li>repetition {attempt.repetition}, seed {attempt.seed}: "
                f'<span class="{_verdict_class(attempt.verdict)}">{e(attempt.verdict)}</span>'
            )
            if attempt.replay:
                parts.append(f"<br>replay: <code>{e(attempt.replay)}</code>")
            if attempt.message:
                parts.append(f"<pre>{e(attempt.message)}</pre>")
            parts.append("</li>")
        parts.append("</ul>")
    return parts


def _html_observations(found: Findings) -> list[str]:
    e = escape
    return [
        '<h2 id="observations">Observations</h2>',
        "<ul>",
        *(f"<li>{e(line)}</li>" for line in found.observations),
        "</ul>",
        "<h3>Notes</h3>",
        f'<p class="muted">{e(NOTES_PROMPT)}</p>',
        '<div class="notes"></div>',
    ]


def _html_actions(plan: Plan, found: Findings) -> list[str]:
    e = escape
    parts = ['<h2 id="actions">Action items</h2>']
    if not found.actions:
        return [*parts, "<p>None: everything held.</p>"]
    parts.append("<ol>")
    for action in found.actions:
        extra = f"<br>Owner: {e(action.owner)}"
        if action.runbook:
            extra += f"<br>Runbook: {_links(plan.runbooks)}"
        if action.replay:
            extra += f"<br>Replay: <code>{e(action.replay)}</code>"
        parts.append(f"<li>{e(action.text)}{extra}</li>")
    parts.append("</ol>")
    return parts


def _html_history(runs: Sequence[RunRecord]) -> list[str]:
    """The score over time: the chart, a row per game day, and the end of the page."""
    e = escape
    rows = []
    for run in runs:
        score = "" if run["score"] is None else f"{run['score']:g}"
        dry = " (dry run)" if run["dry_run"] else ""
        rows.append(
            f'<tr><td><a href="{e(run["report"])}">{e(run["id"])}</a></td><td>{e(run["started"])}</td>'
            f"<td>{e(run['status'])}{dry}</td><td>{score}</td></tr>"
        )
    chart = score_chart(runs, standalone=False)
    table = _table(("game day", "started", "status", "score"), rows)
    return ['<h2 id="score">Score over time</h2>', chart, *table, "</body>", "</html>"]


def _verdict_class(verdict: str) -> str:
    return "verdict-" + verdict.replace(" ", "-")
