"""At session start: remove what runs that are no longer alive left behind (their proxies
and toxics on the Toxiproxy servers the session uses, their disk fill files and processes),
and say so in one line. Nothing here fails the session: an error becomes part of the line.

Normally a run's supervisor has removed all of it when the run ended; this sweep is for
runs whose supervisor died too.

Only runs of this machine can be seen to be dead (:mod:`.identity`); what runs elsewhere
left is left alone, and counted in the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pytest_chaos.leftovers import processes, proxies, register
from pytest_chaos.leftovers.identity import DEAD, ELSEWHERE, parse


class _Census:
    """The runs seen in names, by what this process can tell of them."""

    def __init__(self) -> None:
        self.dead: set[str] = set()
        self.hosts: set[str] = set()  # of runs elsewhere
        self.elsewhere: Counter[str] = Counter()  # what they left, by kind

    def doomed(self, name: str) -> bool:
        parsed = parse(name)
        if parsed is None:
            return False
        identity = parsed[1]
        status = identity.status()
        if status == DEAD:
            self.dead.add(identity.describe())
        return status == DEAD

    def note_kept(self, names: Iterable[str], kind: str) -> None:
        for name in names:
            parsed = parse(name)
            if parsed is not None and parsed[1].status() == ELSEWHERE:
                self.hosts.add(parsed[1].host)
                self.elsewhere[kind] += 1


def sweep_dead_runs(urls: Iterable[str], folder: Path) -> str | None:
    """Sweep the servers at ``urls``, the fill files of the register in ``folder``, and
    the processes of the runs it holds that died with their supervisor; the line that says
    what was removed, left alone, or could not be looked at; None when there was nothing."""
    census = _Census()
    removed: list[str] = []
    problems: list[str] = []
    for url in urls:
        try:
            swept = proxies.sweep(url, census.doomed)
        except Exception as error:
            problems.append(f"could not look at {url} ({type(error).__name__}: {error})")
            continue
        census.note_kept(swept.kept_proxies, "proxy")
        census.note_kept(swept.kept_toxics, "toxic")
        if swept.proxies or swept.toxics:
            removed.append(f"{_things(len(swept.proxies), len(swept.toxics))} at {url}")
    deleted = register.sweep_fills(census.doomed, folder)
    if deleted:
        removed.append(_count(len(deleted), "disk fill file", "disk fill files"))
    dead_runs = [suffix for suffix in register.runs(folder) if census.doomed(suffix)]
    if dead_runs:  # their supervisors died too: their processes may still run
        killed = processes.sweep(census.doomed)
        if killed:
            removed.append(_count(len(killed), "process", "processes"))
        for suffix in dead_runs:
            register.leave_run(suffix, folder)
    parts = []
    if removed:
        runs = ", ".join(sorted(census.dead))
        parts.append(f"removed what dead runs ({runs}) left: " + "; ".join(removed))
    if census.hosts:
        hosts = ", ".join(sorted(census.hosts))
        things = _things(census.elsewhere["proxy"], census.elsewhere["toxic"])
        parts.append(
            f"left alone {things} of runs on {hosts} (whether they are alive cannot be "
            "seen from here)"
        )
    parts.extend(problems)
    return "chaos: " + "; ".join(parts) if parts else None


def _things(proxies: int, toxics: int) -> str:
    return f"{_count(proxies, 'proxy', 'proxies')} and {_count(toxics, 'toxic', 'toxics')}"


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"
