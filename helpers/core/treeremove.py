"""Remove a directory tree, however deep: iteratively, with a bounded number of fds.

`shutil.rmtree` and a recursive walk die of RecursionError on a tree a
build can make (1,500 nested directories), leaving a layer no rebuild and
no `acigen clean` can remove.  Here every entry is acted on by name with
`dir_fd=`, a symlink is removed, never followed, and a directory on
another filesystem (a mount left behind) is never entered.  At most
OPEN_LEVELS directory fds are open at once (one per level would need more
than a shell's usual 1,024): a level further up is closed on the way down
and reopened through `..` on the way up, checked to be the same directory.
"""

from __future__ import annotations

import os
import stat

from acigen.errors import HelperError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Removed:
    """How many entries and bytes went.  (Plain classes here, not dataclasses:
    every chroot step imports this module, and dataclasses cost it ~5 ms.)"""

    __slots__ = ("bytes", "entries")

    def __init__(self, entries: int = 0, bytes: int = 0) -> None:
        self.entries, self.bytes = entries, bytes

    def __repr__(self) -> str:
        return f"Removed(entries={self.entries}, bytes={self.bytes})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Removed):
            return NotImplemented
        return (self.entries, self.bytes) == (other.entries, other.bytes)

    def count(self, st: os.stat_result) -> None:
        self.entries += 1
        if stat.S_ISREG(st.st_mode):
            self.bytes += st.st_size


def same_filesystem(st: os.stat_result, st_parent: os.stat_result, path: str) -> None:
    if st.st_dev != st_parent.st_dev:
        raise HelperError(f"{path}: a different filesystem is mounted here; not removing it")


OPEN_LEVELS = 64  # directory fds held at once, however deep: `ulimit -n` may be 1024


class _Frame:
    """One directory being emptied: its name in its parent, its fd (-1
    while closed, far above the deepest level) and its identity."""

    __slots__ = ("fd", "identity", "name", "names")

    def __init__(self, name: str, fd: int, identity: tuple[int, int]) -> None:
        self.name, self.fd, self.identity = name, fd, identity
        self.names: list[str] | None = None


def _descend(stack: list[_Frame], parent_fd: int, name: str) -> None:
    """Open NAME in PARENT_FD as the new deepest frame; close the fd of the
    frame OPEN_LEVELS above it (it is reopened through '..' on the way up)."""
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    st = os.fstat(fd)
    stack.append(_Frame(name, fd, (st.st_dev, st.st_ino)))
    if len(stack) > OPEN_LEVELS and (far := stack[-1 - OPEN_LEVELS]).fd >= 0:
        os.close(far.fd)
        far.fd = -1


def _parent_fd(stack: list[_Frame], child: _Frame, base: int, path: str) -> int:
    """The fd of CHILD's parent: BASE for the top, else the frame above,
    reopened through CHILD's '..' if it was closed.  The identity check
    stops us if the tree was moved meanwhile, so we never leave it."""
    if not stack:
        return base
    parent = stack[-1]
    if parent.fd < 0:
        fd = os.open("..", DIR_FLAGS, dir_fd=child.fd)
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != parent.identity:
            os.close(fd)
            raise HelperError(f"{path}: the tree was moved while it was being removed; "
                              "stopped")
        parent.fd = fd
    return parent.fd


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
    stack: list[_Frame] = []
    _descend(stack, fd, name)
    try:
        while stack:
            frame = stack[-1]
            if frame.names is None:
                frame.names = os.listdir(frame.fd)
            if frame.names:
                _remove_entry(stack, frame, frame.names.pop(), st, removed, path, dry_run)
                continue
            stack.pop()
            try:
                parent = _parent_fd(stack, frame, fd, path)
            finally:
                os.close(frame.fd)
            if not dry_run:
                os.rmdir(frame.name, dir_fd=parent)
            removed.entries += 1
    finally:
        for frame in stack:
            if frame.fd >= 0:
                os.close(frame.fd)


def _remove_entry(stack: list[_Frame], frame: _Frame, child: str, top: os.stat_result,
                  removed: Removed, path: str, dry_run: bool) -> None:
    """Unlink CHILD of FRAME, or descend into it if it is a directory."""
    child_st = os.stat(child, dir_fd=frame.fd, follow_symlinks=False)
    if stat.S_ISDIR(child_st.st_mode):
        same_filesystem(child_st, top, path)
        _descend(stack, frame.fd, child)
        return
    if not dry_run:
        os.unlink(child, dir_fd=frame.fd)
    removed.count(child_st)


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
