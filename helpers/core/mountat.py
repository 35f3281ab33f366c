"""Mounts placed by file descriptor, and their removal.

A mount target inside an untrusted root is opened first (resolved inside the
root, last component not followed) and the mount goes onto
`/proc/self/fd/N`: the kernel mounts on exactly the inode we opened, so a
symlink planted in the image cannot redirect the mount onto the host.

Kept light (no imports beyond `linux`): the PID namespace's init uses it.

Teardown reads the mount table instead of a list we kept: it also finds the
mounts the command made itself (binfmt_misc under /proc, say), which would
otherwise keep the layer busy.
"""

from __future__ import annotations

import errno
import os

from acigen.helpers.core import linux
from acigen.helpers.core.linux import (
    MNT_DETACH,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    UMOUNT_NOFOLLOW,
    mount,
)
from acigen.helpers.core.mounts import mounts_below


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def open_nofollow(dirfd: int, name: str, directory: bool) -> int:
    """An O_PATH fd of NAME in DIRFD; a symlink there is an error, not a hop."""
    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0)
    return os.open(name, flags, dir_fd=dirfd)


def mount_at(dirfd: int, name: str, source: str, fstype: str | None, flags: int = 0,
             data: str | None = None) -> int:
    """Mount onto the directory NAME in DIRFD; returns an fd of the new mount's root."""
    target = open_nofollow(dirfd, name, directory=True)
    try:
        mount(source, fd_path(target), fstype, flags, data)
    finally:
        os.close(target)
    return open_nofollow(dirfd, name, directory=True)  # a fresh lookup crosses into the mount


def bind_onto(source: str, target_fd: int) -> None:
    """Bind SOURCE onto the inode TARGET_FD was opened on (file, dir or symlink)."""
    mount(source, fd_path(target_fd), None, MS_BIND)


def make_readonly(dirfd: int, name: str, directory: bool = True) -> None:
    """Turn NAME in DIRFD (a subtree or one file) into a read-only bind of itself."""
    target = open_nofollow(dirfd, name, directory)
    try:
        mount(fd_path(target), fd_path(target), None, MS_BIND | MS_REC)
    finally:
        os.close(target)
    bound = open_nofollow(dirfd, name, directory)  # the bind's root, not what it covers
    try:
        mount(None, fd_path(bound), None,
              MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    finally:
        os.close(bound)


def umount(path: str, flags: int = 0) -> None:
    linux.umount(path, flags | UMOUNT_NOFOLLOW)


def unmount_below(top: str) -> None:
    """Unmount everything mounted below TOP, newest first.

    Undoing mounts in reverse order always finds each one where it was made,
    even when one was stacked over another.  Runs after every process that
    could use them is dead, so a busy mount is unexpected: it is detached
    rather than left behind.
    """
    for _ in range(10_000):  # bounded: each pass removes one mount or raises
        points = mounts_below(top)
        if not points:
            return
        try:
            umount(points[-1])
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            umount(points[-1], MNT_DETACH)
    raise OSError(errno.ELOOP, f"cannot unmount everything below {top}")
