"""BUILDDIR/lock: who works in a build directory.

Every helper that reads or writes a build directory (steps, packs, fetches)
holds its lock shared while it runs; `acigen gc` and `acigen clean` take it
exclusively, without waiting, and refuse when they cannot: nothing is
removed under a running build.  A helper started while gc or clean runs
waits for it (they take a moment).
"""

from __future__ import annotations

import fcntl
import os

from acigen.helpers.core import identity
from acigen.helpers.core.filelock import lock_fd

LOCK = "lock"
SUBDIRS = ("layers", "fetch")  # where the entries helpers are given lie
_held: dict[str, int] = {}  # builddir -> fd, kept until the process exits


def lock_path(builddir: str) -> str:
    return os.path.join(builddir, LOCK)


def hold_for(entry: str) -> None:
    """Hold, for the rest of this process, the lock of the build directory
    that ENTRY (BUILDDIR/layers/NAME, BUILDDIR/fetch/NAME) lies in; nothing
    for a path elsewhere (a helper run by hand)."""
    parent = os.path.dirname(os.path.abspath(entry))
    if os.path.basename(parent) not in SUBDIRS:
        return
    builddir = os.path.dirname(parent)
    if builddir in _held:
        return
    identity.check(builddir)
    _held[builddir] = lock_fd(lock_path(builddir), fcntl.LOCK_SH)
