"""Check journals with chaostoolkit-lib itself, in a process of its own (importing it
changes how later in-process pytest runs find their plugins):
``python validate.py JOURNAL...`` prints ``ok`` or the problem, one line per journal.

A journal passes when chaostoolkit-lib validates the experiment it carries
(``ensure_experiment_is_valid``), every activity of its runs (``ensure_activity_is_valid``),
and its shape is the one chaostoolkit-lib writes: the keys of
``chaoslib.run.initialize_run_journal`` plus ``end`` and ``duration``, its statuses, and
each run's and each steady state's keys.
"""

from __future__ import annotations

import json
import sys
from typing import Any

RUN_KEYS = {"activity", "output", "status", "start", "end", "duration"}


def problems(journal: dict[str, Any]) -> list[str]:
    from chaoslib.activity import ensure_activity_is_valid
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.run import initialize_run_journal

    found = []
    try:
        ensure_experiment_is_valid(journal["experiment"])
    except Exception as error:
        found.append(f"experiment: {type(error).__name__}: {error}")
    missing = set(initialize_run_journal(journal["experiment"])) | {"end", "duration"}
    missing -= set(journal)
    if missing:
        found.append(f"missing keys {sorted(missing)}")
    if journal.get("status") not in ("completed", "failed", "aborted", "interrupted"):
        found.append(f"status {journal.get('status')!r}")
    if not isinstance(journal.get("deviated"), bool):
        found.append(f"deviated {journal.get('deviated')!r}")
    states = journal.get("steady_states") or {}
    for state in [states.get("before"), states.get("after"), *states.get("during", [])]:
        if state is None:
            continue
        if not isinstance(state.get("steady_state_met"), bool):
            found.append(f"a steady state without steady_state_met: {state}")
        for run in state.get("probes", []):
            found.extend(_run_problems(run, ensure_activity_is_valid, probe=True))
    for key in ("run", "rollbacks"):
        for run in journal.get(key, []):
            found.extend(_run_problems(run, ensure_activity_is_valid, probe=False))
    return found


def _run_problems(run: dict[str, Any], validate: Any, *, probe: bool) -> list[str]:
    found = []
    if not set(run) >= RUN_KEYS:
        found.append(f"a run without {sorted(RUN_KEYS - set(run))}")
    if run.get("status") not in ("succeeded", "failed"):
        found.append(f"a run with status {run.get('status')!r}")
    if probe and not isinstance(run.get("tolerance_met"), bool):
        found.append(f"a probe run without tolerance_met: {run.get('activity')}")
    try:
        validate(run["activity"])
    except Exception as error:
        found.append(f"activity {run['activity'].get('name')!r}: {type(error).__name__}: {error}")
    return found


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path) as file:
            print("; ".join(problems(json.load(file))) or "ok")
