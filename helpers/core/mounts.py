"""The one mount-table reader: which mount points lie under a directory, in
our mount namespace or in any.

Build helpers mount layer views inside private mount namespaces, invisible
in ours; so gc reads every process's mount table (once per namespace), not
only /proc/self/mountinfo.  Seeing other processes' tables needs root,
which removing a build directory needs anyway.  Tables are read with
surrogateescape: a mount point's name need not be UTF-8.
"""

from __future__ import annotations

import os
import re

_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_points(mountinfo: str) -> list[str]:
    """The mount points (5th field) of one mountinfo text."""
    return [unescape(line.split()[4]) for line in mountinfo.splitlines() if line.strip()]


def _read_table(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as src:
        return src.read()


def mounts_below(top: str) -> list[str]:
    """Mount points strictly below TOP (absolute, resolved) in our own mount
    namespace, in the order they were mounted."""
    prefix = top.rstrip("/") + "/"
    return [p for p in mount_points(_read_table("/proc/self/mountinfo"))
            if p.startswith(prefix)]


def _tables() -> list[str]:
    """One mount table per (namespace, root): a chrooted process sees only
    the mounts below its root, named from there."""
    seen: set[tuple[int, int, int]] = set()
    tables = []
    for pid in ["self", *sorted(p for p in os.listdir("/proc") if p.isdigit())]:
        try:
            root = os.stat(f"/proc/{pid}/root")
            view = (os.stat(f"/proc/{pid}/ns/mnt").st_ino, root.st_dev, root.st_ino)
            if view in seen:
                continue
            tables.append(_read_table(f"/proc/{pid}/mountinfo"))
            seen.add(view)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return tables


def mounted_under(directory: str) -> list[str]:
    """Mount points at or below DIRECTORY (resolved), sorted."""
    top = os.path.realpath(directory)
    found = {point for table in _tables() for point in mount_points(table)
             if point == top or point.startswith(top.rstrip("/") + "/")}
    return sorted(found)
