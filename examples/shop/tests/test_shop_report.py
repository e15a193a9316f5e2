"""Chaos finding a real bug, and the evidence it leaves: the naive shop's experiment (no
timeout on payments; an expected failure in test_shop_experiment.py) run in a pytest of its
own with ``--runxfail --chaos-report DIR``, and the report read back: the terminal's table,
``summary.json``, the experiment's journal and ``report.html``."""

import json
import re
import subprocess
import sys
from html import escape
from pathlib import Path

SHOP_DIR = Path(__file__).resolve().parent.parent
NAIVE = "tests/test_shop_experiment.py::test_the_naive_shop_breaks_its_slo_while_payments_is_slow"
P99_OVER_SLO = re.compile(r"p99 latency (\d+) ms > 1200 ms")


def test_the_naive_shops_report_shows_the_deviation(tmp_path, inner_env):
    out = tmp_path / "chaos-report"
    argv = [sys.executable, "-m", "pytest", "tests/test_shop_experiment.py", "-k", "naive"]
    argv += ["--runxfail", "--chaos-report", str(out), "-p", "no:cacheprovider"]
    result = subprocess.run(
        argv, cwd=SHOP_DIR, env=inner_env, capture_output=True, text=True, timeout=120
    )
    terminal = result.stdout

    # Without its xfail mark the test fails: the hypothesis did not hold.
    assert result.returncode == 1, terminal + result.stderr
    assert re.search(r"^=+ 1 failed, 1 deselected\b", terminal, re.M), terminal
    row = re.search(rf"^deviated +(\d+)/(\d+) +8 +\d+ +(\S*{re.escape(NAIVE)})$", terminal, re.M)
    assert row, terminal
    held, ran, nodeid = int(row[1]), int(row[2]), row[3]
    assert held < ran
    assert f"chaos report: {out / 'report.html'}" in terminal
    assert P99_OVER_SLO.search(terminal)

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["tests"] == summary["totals"]["deviated"] == 1
    assert summary["score"] < 100
    (naive,) = summary["results"]
    assert (naive["nodeid"], naive["verdict"], naive["weight"]) == (nodeid, "deviated", 8)
    assert naive["checks"] == {"passed": held, "total": ran}
    assert naive["faults"][0].startswith("latency of payments (ms=2000,")
    assert "Deviated" in naive["message"]

    # The journal explains the deviation: the p99 latency above the SLO's 1.2 s, because
    # each order waited out the payments latency (the naive client has no timeout).
    (journal_path,) = naive["journals"]
    journal = json.loads((out / journal_path).read_text(encoding="utf-8"))
    assert journal["deviated"] is True
    deviations = journal["pytest_chaos"]["deviations"]
    explained = [P99_OVER_SLO.search(d["explanation"]) for d in deviations]
    assert any(explained), deviations
    assert all(int(match[1]) > 1200 for match in explained if match)
    load = journal["pytest_chaos"]["load"]
    assert load["errors"] == 0  # nothing failed: it was all too slow
    assert load["latency_ms"]["p99"] > 1200

    html = (out / "report.html").read_text(encoding="utf-8")
    assert nodeid in html
    assert "deviated" in html
    assert escape(next(match[0] for match in explained if match)) in html
