"""What a fault is once applied: a record of what was done, where, and when it was undone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultRecord:
    """One applied fault, for hooks, the journal and reports.

    ``kind`` names the fault (``latency``, ``down``...), ``target`` what it hit (a proxy
    name, a process), ``details`` its parameters. ``dry_run`` faults were never applied.
    """

    kind: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    applied_at: float = field(default_factory=time.time)
    rolled_back_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "details": dict(self.details),
            "dry_run": self.dry_run,
            "applied_at": self.applied_at,
            "rolled_back_at": self.rolled_back_at,
        }
