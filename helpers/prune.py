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

from acigen.helpers.common import HelperError
from acigen.helpers.keeps import KeepSet

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Removed:
    entries: int = 0
    bytes: int = 0

    def count(self, st: os.stat_result) -> None:
        self.entries += 1
        if stat.S_ISREG(st.st_mode):
            self.bytes += st.st_size


def mounts_below(root_dir: str) -> list[str]:
    """Mount points strictly inside ROOT_DIR (in this mount namespace)."""
    inside = os.path.realpath(root_dir).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as src:
        for line in src:
            point = _unescape(line.split()[4])
            if point.startswith(inside):
                found.append(point)
    return sorted(found)


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def prune(root_dir: str, keeps: KeepSet, dry_run: bool = False) -> Removed:
    """Delete from ROOT_DIR every entry KEEPS does not cover (with DRY_RUN,
    only count what would go)."""
    mounted = mounts_below(root_dir)
    if mounted:
        raise HelperError(f"{mounted[0]} is a mount point inside the root being pruned",
                          hint="unmount it first; acigen's own steps never leave mounts")
    pruner = _Pruner(keeps, dry_run)
    fd = os.open(root_dir, _DIR_FLAGS)
    try:
        pruner.directory(fd, "/", os.fstat(fd))
    finally:
        os.close(fd)
    return pruner.removed


class _Pruner:
    def __init__(self, keeps: KeepSet, dry_run: bool) -> None:
        self.keeps = keeps
        self.dry_run = dry_run
        self.parents = keeps.parents()
        self.removed = Removed()

    def directory(self, fd: int, path: str, st_dir: os.stat_result) -> None:
        """Prune the kept directory open at FD (in-root PATH)."""
        changed = False
        for name in sorted(os.listdir(fd)):
            child = path.rstrip("/") + "/" + name
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if child in self.keeps.trees:
                continue
            if child in self.keeps.entries or child in self.parents:
                if stat.S_ISDIR(st.st_mode):
                    self._enter(fd, name, child, st, st_dir)
                continue
            remove_at(fd, name, st, st_dir.st_dev, self.removed, child, self.dry_run)
            changed = True
        if changed and not self.dry_run:  # deleting changed its times; we keep those too
            os.utime(fd, ns=(st_dir.st_atime_ns, st_dir.st_mtime_ns))

    def _enter(self, fd: int, name: str, path: str, st: os.stat_result,
               st_parent: os.stat_result) -> None:
        _same_filesystem(st, st_parent, path)
        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
        try:
            self.directory(sub, path, st)
        finally:
            os.close(sub)


def _same_filesystem(st: os.stat_result, st_parent: os.stat_result, path: str) -> None:
    if st.st_dev != st_parent.st_dev:
        raise HelperError(f"{path}: a different filesystem is mounted here; not pruning it")


@dataclass
class _Frame:
    """One directory being emptied: its parent's fd, its name, its own fd."""

    parent: int
    name: str
    fd: int
    names: list[str] | None = None


def remove_at(fd: int, name: str, st: os.stat_result, dev: int, removed: Removed,
              path: str, dry_run: bool = False) -> None:
    """Delete NAME in directory FD and, if a directory, all it holds (with
    DRY_RUN only count them).  Iterative, one fd per level, never following
    a symlink, never entering another filesystem (DEV is the root's)."""
    if not stat.S_ISDIR(st.st_mode):
        if not dry_run:
            os.unlink(name, dir_fd=fd)
        removed.count(st)
        return
    _same_filesystem(st, os.fstat(fd), path)
    stack = [_Frame(fd, name, os.open(name, _DIR_FLAGS, dir_fd=fd))]
    try:
        while stack:
            frame = stack[-1]
            if frame.names is None:
                frame.names = os.listdir(frame.fd)
            if not frame.names:
                os.close(stack.pop().fd)
                if not dry_run:
                    os.rmdir(frame.name, dir_fd=frame.parent)
                removed.entries += 1
                continue
            child = frame.names.pop()
            child_st = os.stat(child, dir_fd=frame.fd, follow_symlinks=False)
            if not stat.S_ISDIR(child_st.st_mode):
                if not dry_run:
                    os.unlink(child, dir_fd=frame.fd)
                removed.count(child_st)
            elif child_st.st_dev != dev:
                raise HelperError(f"{path}: a different filesystem is mounted inside it; "
                                  "not pruning it")
            else:
                stack.append(_Frame(frame.fd, child, os.open(child, _DIR_FLAGS,
                                                             dir_fd=frame.fd)))
    finally:
        for frame in stack:
            os.close(frame.fd)
