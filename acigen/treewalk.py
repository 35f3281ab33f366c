"""A directory tree walked in a fixed order, without recursion.

The compiler walks the host directories a copy step names (to list its
inputs), the helpers walk image trees (to copy, keep and prune them), and
both need the same order: sorted by name, parents first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator


def iter_tree(top: str) -> Iterator[tuple[str, os.stat_result]]:
    """Walk TOP without following symlinks: (relative path, lstat), sorted
    by name within each directory, parents before children.  Iterative: a
    tree 1,500 directories deep is walked like any other."""
    pending = [_sorted_entries(top, "")]  # per level, entries still to yield (reversed)
    while pending:
        if not pending[-1]:
            pending.pop()
            continue
        child, st = pending[-1].pop()
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            pending.append(_sorted_entries(top, child))


def _sorted_entries(top: str, rel: str) -> list[tuple[str, os.stat_result]]:
    """The entries of TOP/REL as (relative path, lstat), in reverse order."""
    with os.scandir(os.path.join(top, rel) if rel else top) as it:
        entries = sorted(it, key=lambda e: e.name.encode("utf-8", "surrogateescape"),
                         reverse=True)
    return [(f"{rel}/{entry.name}" if rel else entry.name, entry.stat(follow_symlinks=False))
            for entry in entries]
