"""BUILDDIR/owner, the file that says whose builds a build directory holds:
"root", or "user UID" for one user's rootless builds.

Helpers of one build start at once and a kill may land anywhere, so the
record appears whole or not at all: it is written to a temporary and
linked into place, and the first link wins.  An empty record (a torn
write by an acigen before this module) says nothing and is rewritten.
"""

from __future__ import annotations

import contextlib
import os

RECORD = "owner"


def read(builddir: str) -> str | None:
    """The recorded owner, or None when there is no record or it is empty."""
    try:
        with open(os.path.join(builddir, RECORD), encoding="ascii", errors="replace") as src:
            return src.read().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def write(builddir: str, owner: str) -> None:
    """Record OWNER unless a whole record is there already."""
    path = os.path.join(builddir, RECORD)
    temp = os.path.join(builddir, f".{RECORD}.tmp-{os.getpid()}")  # a dead pid's: ours now
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(owner + "\n")
            os.fchmod(fd, 0o644)  # whatever the umask: acigen reads it as the user
        try:
            os.link(temp, path)
        except FileExistsError:
            if read(builddir) is None:
                os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def describe(owner: str) -> str:
    if owner == "root":
        return "root builds (sudo ninja)"
    return f"rootless builds by uid {owner.removeprefix('user ')}"
