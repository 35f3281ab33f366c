"""What a test left behind under its own directories: mounts and processes.

Only what acigen could have made is looked at: mounts whose mount point lies
under the given directories, in every mount namespace on the machine (a
helper's private namespace too, while a process still holds it), and
processes working or chrooted there.  Other programs' mounts elsewhere (a
container engine's overlays, a desktop's tmpfs) are none of the tests'
business, so a busy machine does not fail them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from acigen.helpers.core.mounts import mounted_under


def _pids() -> list[str]:
    return [entry for entry in os.listdir("/proc") if entry.isdigit()]


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def _roots(directories: Iterable[Path]) -> tuple[str, ...]:
    return tuple(os.path.realpath(d) for d in directories)


def mounts_under(directories: Iterable[Path]) -> set[str]:
    """Mount points under DIRECTORIES, in every mount namespace (acigen gc's view)."""
    return {point for directory in directories for point in mounted_under(str(directory))}


def processes_under(directories: Iterable[Path]) -> set[tuple[int, str]]:
    """(pid, command line) of processes whose root or cwd is under DIRECTORIES."""
    roots = _roots(directories)
    found = set()
    for pid in _pids():
        if int(pid) == os.getpid():
            continue
        try:
            places = [os.readlink(f"/proc/{pid}/{link}") for link in ("root", "cwd")]
            with open(f"/proc/{pid}/cmdline", "rb") as src:
                line = src.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if any(_under(place, roots) for place in places):
            found.add((int(pid), line))
    return found


def snapshot(directories: Iterable[Path]) -> tuple[set, set]:
    directories = list(directories)
    return mounts_under(directories), processes_under(directories)


def left_behind(before: tuple[set, set], after: tuple[set, set]) -> str:
    """A message naming what AFTER has that BEFORE had not; empty when nothing."""
    mounts, procs = after[0] - before[0], after[1] - before[1]
    parts = []
    if mounts:
        parts.append(f"mounts left behind: {sorted(mounts)}")
    if procs:
        parts.append(f"processes left behind: {sorted(procs)}")
    return "; ".join(parts)
