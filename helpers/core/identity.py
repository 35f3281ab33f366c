"""BUILDDIR/owner: whose builds a build directory holds, root's or one user's.

A root build's layers hold the image's owners as host ids; a rootless
build's hold them shifted into the user's subordinate range.  Mixing them
would give layers whose owners mean different things (and that the other
side cannot read or remove), so a helper that finds the other kind of
build's record refuses with one line.  Written by the first helper that
works in the directory (ownerrecord).
"""

from __future__ import annotations

import os

from acigen.errors import HelperError
from acigen.helpers.core import ownerrecord, userns


def current() -> str:
    """'root', or 'user UID' for a rootless build by host uid UID."""
    if userns.mode() == "root":
        return "root"
    return f"user {userns.outside_uid()}"


def _inferred(builddir: str) -> str | None:
    """For a directory from before the record: who owns its layers."""
    try:
        st = os.stat(os.path.join(builddir, "layers"))
    except FileNotFoundError:
        return None
    if userns.mode() == "root":
        return "root" if st.st_uid == 0 else f"user {st.st_uid}"
    # inside the namespace, the user is 0; host root shows as the overflow id
    return current() if st.st_uid == 0 else "root"


def check(builddir: str) -> None:
    """Record who builds in BUILDDIR, or refuse if it is someone else."""
    mine = current()
    found = ownerrecord.read(builddir)
    if found is None:
        found = _inferred(builddir) or mine
        if found == mine:
            ownerrecord.write(builddir, mine)
            found = ownerrecord.read(builddir) or mine  # another helper may have been first
    if found != mine:
        raise HelperError(f"{builddir}: this build directory belongs to "
                          f"{ownerrecord.describe(found)}, not to "
                          f"{ownerrecord.describe(mine)}: use another build directory (-B), or "
                          f"remove this one as its owner (acigen clean)")

