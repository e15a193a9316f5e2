"""The register of what runs leave on this machine, in a folder of this user's
(``pytest-chaos-UID`` in the temporary directory):

- ``runs/``: an entry for each run whose supervisor runs, made when it starts and removed
  once it has ended everything. An entry left by a dead run says that its processes may
  have outlived it: the next run then looks for them (:mod:`.processes`).
- ``fills/``: a symbolic link to each disk fill file, made before its first byte is
  written and removed with the file. The run's supervisor removes the run's files when the
  run ends however it ends; the next run removes those of dead runs.

Entries are named with the run's identity (:mod:`.identity`). Standard library only (the
supervisor process imports it).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

FILL_PREFIX = "pytest-chaos-fill-"
"""How every fill file's name begins: a register entry pointing elsewhere is not followed."""


def default_folder() -> Path:
    return Path(tempfile.gettempdir(), f"pytest-chaos-{os.getuid()}")


def _part(folder: Path, name: str) -> Path | None:
    """``folder/name``, made if needed; None when it cannot be used (made by another user,
    not a folder)."""
    part = folder / name
    try:
        part.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return None
    except OSError:
        return None
    return part


# -- runs ------------------------------------------------------------------------------------


def enter_run(suffix: str, folder: Path) -> None:
    """Say that the run of identity ``suffix`` has a supervisor."""
    part = _part(folder, "runs")
    if part is not None:
        (part / suffix).touch()


def leave_run(suffix: str, folder: Path) -> None:
    """Say that the supervisor of the run ``suffix`` has ended everything."""
    (folder / "runs" / suffix).unlink(missing_ok=True)


def runs(folder: Path) -> list[str]:
    """The identity suffixes of the runs entered and not left."""
    try:
        return [entry.name for entry in os.scandir(folder / "runs")]
    except OSError:
        return []


# -- fill files ------------------------------------------------------------------------------


def enter_fill(file: Path, suffix: str, folder: Path) -> Path | None:
    """Enter ``file`` (not written yet) of the run ``suffix``; the entry, or None when the
    register cannot be used (a folder another user made, a platform without links)."""
    part = _part(folder, "fills")
    if part is None:
        return None
    entry = part / (file.name + suffix)
    try:
        entry.symlink_to(file.absolute())
    except (OSError, NotImplementedError):
        return None
    return entry


def leave(entry: Path | None) -> None:
    if entry is not None:
        entry.unlink(missing_ok=True)


def sweep_fills(doomed: Callable[[str], bool], folder: Path) -> list[Path]:
    """Delete the fill file of every entry whose name is ``doomed``, and the entry;
    return the files deleted."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder / "fills"))
    except OSError:
        return removed
    for entry in entries:
        if not entry.is_symlink() or not doomed(entry.name):
            continue
        target = Path(os.readlink(entry.path))
        if target.name.startswith(FILL_PREFIX):
            try:
                target.unlink()
                removed.append(target)
            except FileNotFoundError:
                pass
            except OSError:
                continue  # keep the entry: a later run may be able to
        leave(Path(entry.path))
    return removed
