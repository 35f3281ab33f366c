"""The few Linux system calls the helpers need that Python's os module lacks
(mount namespaces, mounts, statfs, openat2), through ctypes: the one module
that loads libc."""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

OVERLAYFS_MAGIC = 0x794C7630  # statfs f_type
_SYS_OPENAT2 = 437  # the same number on every architecture (asm-generic)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _enc(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags),
                       _enc(data)), f"mount {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_enc(target), ctypes.c_int(flags)), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def fs_magic(path: str) -> int:
    """The f_type of the filesystem PATH lies on (statfs(2))."""
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type comes first
    _check(_libc.statfs(os.fsencode(path), buf), f"statfs {path}")
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2) with RESOLVE flags; an fd, or OSError naming PATH."""
    how = _OpenHow(flags, 0, resolve)
    fd = _libc.syscall(_SYS_OPENAT2, dirfd, os.fsencode(path), ctypes.byref(how),
                       ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)

