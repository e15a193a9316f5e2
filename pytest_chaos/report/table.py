"""The session's table of chaos tests (test, faults, verdict, weight, seed) under its
score, as plain text for the terminal and as Markdown for GitHub's job summary."""

from __future__ import annotations

from pytest_chaos.report.results import ChaosResult
from pytest_chaos.report.score import Gates, Score

HEADERS = ("test", "faults", "verdict", "checks", "weight", "seed")


def rows(results: tuple[ChaosResult, ...]) -> list[tuple[str, ...]]:
    return [
        (
            result.nodeid,
            "; ".join(result.faults) or "-",
            result.verdict,
            f"{result.checks_passed}/{result.checks_total}" if result.scored else "-",
            str(result.weight),
            str(result.seed),
        )
        for result in results
    ]


def _headline(score: Score, gates: Gates, failures: list[str]) -> str:
    """One line: the score, and the gates' verdict when any is set."""
    value = "n/a (no chaos test was scored)" if score.value is None else f"{score.value:g}/100"
    line = f"resilience score {value}"
    if gates.active:
        line += " - gates " + ("FAILED" if failures else "passed")
    return line


def text(score: Score, gates: Gates) -> list[str]:
    """The terminal's lines: the headline, then a table with the test last (it is the
    longest, and is never cut) and each test's faults on an indented line below it."""
    failures = gates.failures(score)
    head = ("verdict", "checks", "weight", "seed", "test")
    table = [
        (verdict, checks, weight, seed, test)
        for test, _, verdict, checks, weight, seed in rows(score.results)
    ]
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(len(head) - 1)]
    indent = sum(widths) + 2 * len(widths)
    lines = [_headline(score, gates, failures), _aligned(head, widths)]
    for row, result in zip(table, score.results, strict=True):
        lines.append(_aligned(row, widths))
        if result.faults:
            lines.append(" " * indent + "faults: " + "; ".join(result.faults))
    lines.extend(f"gate failed: {failure}" for failure in failures)
    return lines


def _aligned(row: tuple[str, ...], widths: list[int]) -> str:
    cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
    return "  ".join([*cells, row[-1]])


def markdown(score: Score, gates: Gates) -> str:
    """GitHub-flavoured Markdown: a heading with the score, the gates, the table."""
    failures = gates.failures(score)
    lines = [f"### pytest-chaos: {_headline(score, gates, failures)}", ""]
    if failures:
        lines.extend([*(f"- :x: {failure}" for failure in failures), ""])
    lines.append("| " + " | ".join(HEADERS) + " |")
    lines.append("|" + " --- |" * len(HEADERS))
    for row in rows(score.results):
        cells = [cell.replace("|", "\\|") for cell in row]
        cells[0] = f"`{cells[0]}`"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
