"""Remove a directory tree, however deep: iteratively, one fd per level.

`shutil.rmtree` and a recursive walk die of RecursionError on a tree a
build can make (1,500 nested directories), leaving a layer no rebuild and
no `acigen clean` can remove.  Here every entry is acted on by name with
`dir_fd=`, a symlink is removed, never followed, and a directory on
another filesystem (a mount left behind) is never entered.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from acigen.errors import HelperError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Removed:
    entries: int = 0
    bytes: int = 0

    def count(self, st: os.stat_result) -> None:
        self.entries += 1
        if stat.S_ISREG(st.st_mode):
            self.bytes += st.st_size


def same_filesystem(st: os.stat_result, st_parent: os.stat_result, path: str) -> None:
    if st.st_dev != st_parent.st_dev:
        raise HelperError(f"{path}: a different filesystem is mounted here; not removing it")


@dataclass
class _Frame:
    """One directory being emptied: its parent's fd, its name, its own fd."""

    parent: int
    name: str
    fd: int
    names: list[str] | None = None


def remove_at(fd: int, name: str, st: os.stat_result, removed: Removed, path: str,
              dry_run: bool = False) -> None:
    """Delete NAME (whose lstat is ST) in directory FD and, if a directory,
    all it holds (with DRY_RUN only count them); PATH names it in errors."""
    if not stat.S_ISDIR(st.st_mode):
        if not dry_run:
            os.unlink(name, dir_fd=fd)
        removed.count(st)
        return
    same_filesystem(st, os.fstat(fd), path)
    stack = [_Frame(fd, name, os.open(name, DIR_FLAGS, dir_fd=fd))]
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
            else:
                same_filesystem(child_st, st, path)
                stack.append(_Frame(frame.fd, child, os.open(child, DIR_FLAGS,
                                                             dir_fd=frame.fd)))
    finally:
        for frame in stack:
            os.close(frame.fd)


def remove_tree(path: str) -> None:
    """Remove PATH (a file, a link or a whole tree); absent is fine."""
    parent = os.open(os.path.dirname(os.path.abspath(path)), DIR_FLAGS)
    try:
        name = os.path.basename(os.path.abspath(path))
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        remove_at(parent, name, st, Removed(), path)
    finally:
        os.close(parent)
