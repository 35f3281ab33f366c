"""An upper dir fuse-overlayfs wrote, made what the kernel's overlayfs
would have written for the same step.

What fuse-overlayfs 1.10 does differently (seen by experiment, as root and
in a user namespace):

- every directory it creates is opaque (the kernel's only where something
  below was deleted and the directory made in its place), marked with an
  xattr (trusted.overlay.opaque as root, user.fuseoverlayfs.opaque in a
  user namespace) and a `.wh..wh..opq` file, often with a `.wh..opq`
  whiteout beside it;
- a copied-up file gets a user.fuseoverlayfs.origin xattr;
- a whiteout is a character device 0/0, as the kernel's, or, where it
  cannot make one, an empty file `.wh.NAME`.

So: the marker files and fuse-overlayfs' own xattrs go; a directory stays
opaque (with the kernel's xattr) only where the layers below show something
at its path; a `.wh.NAME` file becomes the kernel's whiteout where mknod is
allowed (else it stays, and oci/layer.py reads it as a whiteout).  The
directories keep their times.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence

from acigen.helpers.core.userns import in_user_namespace

WHITEOUT_PREFIX = ".wh."
MARKERS = (".wh..wh..opq", ".wh..opq")  # fuse-overlayfs' opaque markers
FUSE_XATTRS = ("user.fuseoverlayfs.", "security.fuseoverlayfs.", "trusted.fuseoverlayfs.")
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque",
                 "user.fuseoverlayfs.opaque")


def kernel_opaque_xattr() -> str:
    # in a user namespace overlayfs keeps its metadata in user.overlay.* (userxattr)
    return "user.overlay.opaque" if in_user_namespace() else "trusted.overlay.opaque"


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def is_whiteout(directory: str, name: str, st: os.stat_result | None) -> bool:
    """Whether NAME in DIRECTORY of a layer says 'deleted' (either form)."""
    if st is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    marker = _lstat(os.path.join(directory, WHITEOUT_PREFIX + name))
    return marker is not None and stat.S_ISREG(marker.st_mode) and marker.st_size == 0


def _opaque(path: str) -> bool:
    for name in OPAQUE_XATTRS:
        with contextlib.suppress(OSError):
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
    return os.path.lexists(os.path.join(path, MARKERS[0]))


def shown_below(parts: Sequence[str], lower: Sequence[str]) -> bool:
    """Whether the merged view of the LOWER trees (nearest first) shows an
    entry at PARTS (a path split into names)."""
    for tree in lower:
        directory, hidden_below = tree, False
        for depth, name in enumerate(parts):
            path = os.path.join(directory, name)
            st = _lstat(path)
            if is_whiteout(directory, name, st):
                return False
            if st is None:
                break
            if depth == len(parts) - 1:
                return True
            if not stat.S_ISDIR(st.st_mode):
                return False  # a file here hides whatever the layers below hold
            hidden_below = hidden_below or _opaque(path)
            directory = path
        if hidden_below:
            return False
    return False


def _drop_fuse_xattrs(path: str) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name.startswith(FUSE_XATTRS) or name in OPAQUE_XATTRS:
            os.removexattr(path, name, follow_symlinks=False)


def _whiteout_file_to_device(directory: str, name: str) -> None:
    """`.wh.NAME` -> a character device 0/0 named NAME, where mknod is allowed."""
    target = os.path.join(directory, name[len(WHITEOUT_PREFIX):])
    try:
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    except OSError:
        return  # kept as the file: oci/layer.py reads it as a whiteout too
    os.unlink(os.path.join(directory, name))


def _file(directory: str, name: str, parts: list[str], lower: Sequence[str],
          hidden: bool) -> None:
    """A non-directory entry: fuse-overlayfs' xattrs dropped; a whiteout kept
    only where the kernel would have made one (something below to hide)."""
    path = os.path.join(directory, name)
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        if hidden or not shown_below(parts, lower):
            os.unlink(path)
        return
    _drop_fuse_xattrs(path)
    if name.startswith(WHITEOUT_PREFIX) and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        deleted = [*parts[:-1], name[len(WHITEOUT_PREFIX):]]
        if hidden or not shown_below(deleted, lower):
            os.unlink(path)
        else:
            _whiteout_file_to_device(directory, name)


def normalize(upper: str, lower: Sequence[str]) -> None:
    """Make UPPER (a fuse-overlayfs upper dir over LOWER, nearest first) the
    kernel's form, in place.  Iterative: a layer can be deeper than Python's
    recursion limit."""
    # (path, parts, hidden, its stat) to enter; None: the directory on top of
    # `left` is done (its opaque mark and times are put last)
    todo: list[tuple[str, list[str], bool, os.stat_result] | None] = [
        (upper, [], False, os.lstat(upper))]
    left: list[tuple[str, list[str], bool, bool, os.stat_result]] = []
    while todo:
        item = todo.pop()
        if item is None:
            _leave(*left.pop(), lower)
            continue
        path, parts, hidden, st = item
        made_here = bool(parts) and _opaque(path)  # fuse-overlayfs marks every new directory
        if parts:
            _drop_fuse_xattrs(path)
        left.append((path, parts, hidden, made_here, st))
        todo.append(None)
        for name, entry_st in _children(path):
            child = os.path.join(path, name)
            if name in MARKERS:
                os.unlink(child)
            elif stat.S_ISDIR(entry_st.st_mode):
                todo.append((child, [*parts, name], hidden or made_here, entry_st))
            else:
                _file(path, name, [*parts, name], lower, hidden or made_here)


def _children(path: str) -> list[tuple[str, os.stat_result]]:
    with os.scandir(path) as entries:
        return sorted((e.name, e.stat(follow_symlinks=False)) for e in entries)


def _leave(path: str, parts: list[str], hidden: bool, made_here: bool,
           st: os.stat_result, lower: Sequence[str]) -> None:
    if made_here and not hidden and shown_below(parts, lower):
        os.setxattr(path, kernel_opaque_xattr(), b"y", follow_symlinks=False)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
