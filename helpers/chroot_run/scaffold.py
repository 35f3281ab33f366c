"""Entries made inside a root only for the length of a step.

A mount needs a mount point, and a file bind-mounted over a path needs
something at that path to cover.  When the image has nothing there we make
a directory or an empty file, and take it out again after the step, so the
image never shows it:

- the entry is removed only if it is still the one we made (same inode) and,
  for a directory, only if the command left nothing in it;
- its parent's times are put back, unless the command changed the parent
  too (then the new times are the command's doing).

Under overlayfs the parent directory may stay in the layer as a copied-up
directory; its contents, modes, owners and times are those of the layer
below, so the merged image is byte-for-byte what it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from acigen.errors import HelperError
from acigen.helpers.rootfs.root import Root, split


class _Made:
    """An entry we made (a plain class: dataclasses cost every step ~5 ms)."""

    __slots__ = ("inode", "is_dir", "name", "parent_after", "parent_before", "parent_fd")

    def __init__(self, parent_fd: int, name: str, inode: tuple[int, int], is_dir: bool,
                 parent_before: os.stat_result, parent_after: os.stat_result) -> None:
        self.parent_fd = parent_fd  # O_PATH, held open: removal must not resolve the path again
        self.name = name
        self.inode = inode
        self.is_dir = is_dir
        self.parent_before = parent_before  # parent's times before we made the entry
        self.parent_after = parent_after  # ... and just after


class Scaffold:
    """Makes missing entries inside ROOT and removes them again."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self._made: list[_Made] = []

    def directory(self, path: str) -> int:
        """An O_PATH fd of directory PATH (caller closes), made like
        `mkdir -p` inside the root where missing."""
        parts = split(path)
        fd = os.dup(self.root.fd)
        for depth, name in enumerate(parts, 1):
            try:
                child = self._open_or_make_dir(fd, name, "/" + "/".join(parts[:depth]))
            finally:
                os.close(fd)
            fd = child
        return fd

    def _open_or_make_dir(self, parent: int, name: str, shown: str) -> int:
        st = _lstat(parent, name)
        if st is None:
            self._make(parent, name, is_dir=True)
        elif stat.S_ISLNK(st.st_mode):
            return self._follow_link(parent, name, shown)
        elif not stat.S_ISDIR(st.st_mode):
            raise HelperError(f"{shown} in the image is not a directory")
        return os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=parent)

    def _follow_link(self, parent: int, name: str, shown: str) -> int:
        """A symlinked directory is followed inside the root, if its target exists."""
        target = os.readlink(name, dir_fd=parent)
        try:
            return self.root.open(shown, os.O_PATH | os.O_DIRECTORY)
        except OSError as exc:
            raise HelperError(f"{shown} in the image is a symlink to {target}, which "
                              f"does not lead to a directory inside the image "
                              f"({exc.strerror.lower()})") from None

    def entry(self, path: str) -> int:
        """An O_PATH fd of the entry at PATH itself, never followed (caller
        closes); an empty file is made there if nothing is."""
        parts = split(path)
        if not parts:
            raise HelperError(f"{path!r} does not name an entry inside the root")
        parent = self.directory("/".join(parts[:-1]))
        try:
            st = _lstat(parent, parts[-1])
            if st is None:
                self._make(parent, parts[-1], is_dir=False)
            elif stat.S_ISDIR(st.st_mode):
                raise HelperError(f"/{'/'.join(parts)} in the image is a directory")
            return os.open(parts[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        finally:
            os.close(parent)

    def _make(self, parent: int, name: str, is_dir: bool) -> None:
        before = os.stat(parent)
        if is_dir:
            os.mkdir(name, 0o755, dir_fd=parent)
        else:
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=parent))
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        self._made.append(_Made(os.dup(parent), name, (st.st_dev, st.st_ino), is_dir,
                                before, os.stat(parent)))

    def remove_all(self) -> list[str]:
        """Take out what we made, newest first; returns what had to stay."""
        kept: list[str] = []
        while self._made:
            made = self._made.pop()
            try:
                if not self._remove(made):
                    kept.append(made.name)
            finally:
                os.close(made.parent_fd)
        return kept

    def _remove(self, made: _Made) -> bool:
        st = _lstat(made.parent_fd, made.name)
        if st is None or (st.st_dev, st.st_ino) != made.inode:
            return False  # the command replaced it: what is there now is the command's
        parent_untouched = _same_times(os.stat(made.parent_fd), made.parent_after)
        try:
            if made.is_dir:
                os.rmdir(made.name, dir_fd=made.parent_fd)
            else:
                os.unlink(made.name, dir_fd=made.parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False  # the command put files in it: they belong to the image
            raise
        if parent_untouched:
            before = made.parent_before
            os.utime(_where(made.parent_fd), ns=(before.st_atime_ns, before.st_mtime_ns))
        return True


def _where(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _lstat(dirfd: int, name: str) -> os.stat_result | None:
    with contextlib.suppress(FileNotFoundError):
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    return None


def _same_times(a: os.stat_result, b: os.stat_result) -> bool:
    # mtime only: our own restores of a sibling's removal change ctime
    return a.st_mtime_ns == b.st_mtime_ns
