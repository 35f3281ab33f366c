"""Delete everything in a root that a keep set does not cover.

The tree is pruned in place, never rebuilt: what stays keeps its inode, so
kept directories keep their modes, owners, xattrs and times (the times are
put back after their entries are deleted).  The walk holds a directory fd
at every level and acts on names with `dir_fd=`, never following a
symlink: an image symlink is deleted or kept as a link, never entered.  It
refuses to start if anything is mounted below the root, and never enters a
directory on another filesystem.

On overlayfs (a layer's merged view) a delete leaves a whiteout in the upper
layer, which is exactly "removed from the image".
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from acigen.errors import HelperError
from acigen.helpers.core.mounts import mounts_below as own_mounts_below
from acigen.helpers.core.treeremove import DIR_FLAGS, Removed, remove_at, same_filesystem
from acigen.helpers.extract.keeps import KeepSet


def mounts_below(root_dir: str) -> list[str]:
    """Mount points strictly inside ROOT_DIR (in this mount namespace), sorted."""
    return sorted(own_mounts_below(os.path.realpath(root_dir)))


def prune(root_dir: str, keeps: KeepSet, dry_run: bool = False) -> Removed:
    """Delete from ROOT_DIR every entry KEEPS does not cover (with DRY_RUN,
    only count what would go)."""
    mounted = mounts_below(root_dir)
    if mounted:
        raise HelperError(f"{mounted[0]} is a mount point inside the root being pruned",
                          hint="unmount it first; acigen's own steps never leave mounts")
    pruner = _Pruner(keeps, dry_run)
    fd = os.open(root_dir, DIR_FLAGS)
    try:
        pruner.directory(fd, "/", os.fstat(fd))
    finally:
        os.close(fd)
    return pruner.removed


@dataclass
class _Kept:
    """A kept directory being pruned: its fd, in-root path, lstat, and the
    names still to look at (reversed: pop() takes them in sorted order)."""

    fd: int
    path: str
    st: os.stat_result
    names: list[str]
    changed: bool = False


class _Pruner:
    def __init__(self, keeps: KeepSet, dry_run: bool) -> None:
        self.keeps = keeps
        self.dry_run = dry_run
        self.parents = keeps.parents()
        self.removed = Removed()

    def directory(self, fd: int, path: str, st_dir: os.stat_result) -> None:
        """Prune the kept directory open at FD (in-root PATH) and the kept
        directories below it: iteratively, one fd per level, however deep."""
        stack = [_Kept(fd, path, st_dir, sorted(os.listdir(fd), reverse=True))]
        try:
            while stack:
                top = stack[-1]
                if top.names:
                    self._look_at(top, top.names.pop(), stack)
                    continue
                stack.pop()
                if top.changed and not self.dry_run:  # deleting changed its times
                    os.utime(top.fd, ns=(top.st.st_atime_ns, top.st.st_mtime_ns))
                if top.fd != fd:
                    os.close(top.fd)
        finally:
            for frame in stack[1:]:
                os.close(frame.fd)

    def _look_at(self, top: _Kept, name: str, stack: list[_Kept]) -> None:
        """Keep, enter (pushed on STACK) or delete NAME in TOP."""
        child = top.path.rstrip("/") + "/" + name
        st = os.stat(name, dir_fd=top.fd, follow_symlinks=False)
        if child in self.keeps.trees:
            return
        if child in self.keeps.entries or child in self.parents:
            if stat.S_ISDIR(st.st_mode):
                same_filesystem(st, top.st, child)
                sub = os.open(name, DIR_FLAGS, dir_fd=top.fd)
                stack.append(_Kept(sub, child, st, []))  # closed by directory() if listdir fails
                stack[-1].names = sorted(os.listdir(sub), reverse=True)
            return
        remove_at(top.fd, name, st, self.removed, child, self.dry_run)
        top.changed = True
