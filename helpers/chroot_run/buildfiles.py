"""Files that exist only while a chroot step's command runs.

The host's resolv.conf and hosts (so the command can reach package mirrors)
and a policy-rc.d that exits 101 (so Debian packages do not start services)
are staged in the step's scratch directory and bind-mounted over their
path in the image.  The mount covers the entry that is there, whatever it
is: a regular file, or a symlink, dangling or not (Debian's resolv.conf is
often a link into /run).  The link is covered, never followed or written
through, so nothing is created at its target, in the image or on the host.
Where the image has nothing, an empty file is made to cover and removed
afterwards (see scaffold).  Once unmounted, the image's own entry is back,
byte for byte; the layer never held our copy.

As in `docker build`, the command may write to these files but its changes
are discarded (the log says so), and replacing or deleting one fails with
EBUSY, since it is a mount point.
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Callable

from acigen.helpers.chroot_run.scaffold import Scaffold
from acigen.helpers.core.mountat import bind_onto

POLICY_RC_D = "/usr/sbin/policy-rc.d"
POLICY_RC_D_SCRIPT = (b"#!/bin/sh\n"
                      b"# acigen: no service may start while the image is being built\n"
                      b"exit 101\n")


# namedtuples, not dataclasses: every step imports this module (~5 ms saved)
# BuildFile: path in the image, data (bytes), mode
BuildFile = namedtuple("BuildFile", ("path", "data", "mode"))
# Placed: the BuildFile, and its staged copy on the host side (in the scratch directory)
Placed = namedtuple("Placed", ("file", "copy"))


def host_file(path: str, note: Callable[[str], None]) -> BuildFile | None:
    """The host's PATH, to be put at the same path in the image."""
    try:
        with open(path, "rb") as src:
            return BuildFile(path, src.read(), 0o644)
    except FileNotFoundError:
        note(f"acigen: the host has no {path}; the image's own is used")
        return None


def place(scaffold: Scaffold, scratch: str, wanted: BuildFile) -> Placed:
    """Stage WANTED in SCRATCH and mount it over its path inside the root."""
    copy = os.path.join(scratch, "file" + wanted.path.replace("/", "-"))
    with open(copy, "wb") as out:
        out.write(wanted.data)
    os.chmod(copy, wanted.mode)
    target = scaffold.entry(wanted.path)
    try:
        bind_onto(copy, target)
    finally:
        os.close(target)
    return Placed(wanted, copy)


def report_changes(placed: list[Placed], note: Callable[[str], None]) -> None:
    """Say which build-time files the command wrote to (its changes are dropped)."""
    for item in placed:
        with open(item.copy, "rb") as src:
            if src.read() != item.file.data:
                note(f"acigen: the command changed {item.file.path}; build-time files are "
                     "not kept in the image, so the change is dropped")
