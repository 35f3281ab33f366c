"""The kernel filesystems a chroot step sees: /dev, /sys and /proc.

None of them is the host's: /dev is a fresh tmpfs holding only the device
nodes a build needs (no disks), a fresh devpts and a fresh shm; /sys is a
fresh sysfs, read-only; /proc is a fresh proc of the step's own PID
namespace, mounted by that namespace's init (see pidns_init), with /proc/sys
and /proc/sysrq-trigger read-only so a package script cannot retune or
reboot the host.  Whatever the command writes under them is gone with the
mounts, so it never reaches the layer.

Each mount point must be a real directory at the top of the image.  A
symlink there (`proc -> /etc`) is refused: following it, even inside the
root, would mount over some other part of the image.
"""

from __future__ import annotations

import os
import stat

from acigen.helpers.common import HelperError
from acigen.helpers.linux import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY
from acigen.helpers.mountat import mount_at
from acigen.helpers.scaffold import Scaffold

DEV_NODES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
             ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
             ("ptmx", "pts/ptmx"))
PRIVATE_DIR = ".acigen-build"  # a tmpfs at /.acigen-build for the step's own files


def mount_point(scaffold: Scaffold, name: str, what: str) -> None:
    """Make sure /NAME in the image is a real directory (made if missing)."""
    try:
        st = os.stat(name, dir_fd=scaffold.root.fd, follow_symlinks=False)
    except FileNotFoundError:
        os.close(scaffold.directory(name))
        return
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=scaffold.root.fd)
        raise HelperError(f"/{name} in the image is a symlink (to {target}); acigen mounts "
                          f"{what} only on a real directory",
                          hint=f"make /{name} a directory in the image, or turn {what} off "
                               "in setup_chroot")
    if not stat.S_ISDIR(st.st_mode):
        raise HelperError(f"/{name} in the image is not a directory, so {what} cannot be "
                          "mounted there")


def mount_dev(scaffold: Scaffold) -> None:
    mount_point(scaffold, "dev", "/dev")
    dev = mount_at(scaffold.root.fd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC,
                   "mode=755,size=65536k")
    try:
        _populate_dev(dev)
    finally:
        os.close(dev)


def _populate_dev(dev: int) -> None:
    for name, major, minor in DEV_NODES:
        os.mknod(name, stat.S_IFCHR | 0o666, os.makedev(major, minor), dir_fd=dev)
        os.chmod(name, 0o666, dir_fd=dev)  # mknod's mode is cut by the umask
    for name, target in DEV_LINKS:
        os.symlink(target, name, dir_fd=dev)
    os.mkdir("pts", 0o755, dir_fd=dev)
    os.close(mount_at(dev, "pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                      "newinstance,ptmxmode=0666,mode=0620,gid=5"))
    os.mkdir("shm", 0o755, dir_fd=dev)
    os.close(mount_at(dev, "shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "mode=1777,size=65536k"))


def mount_sys(scaffold: Scaffold) -> None:
    mount_point(scaffold, "sys", "/sys")
    os.close(mount_at(scaffold.root.fd, "sys", "sysfs", "sysfs",
                      MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC))


def prepare_proc(scaffold: Scaffold) -> None:
    """/proc must be mounted from inside the new PID namespace; this only
    makes sure its mount point is sound."""
    mount_point(scaffold, "proc", "/proc")


def mount_private_dir(scaffold: Scaffold) -> int:
    """A tmpfs at /.acigen-build; returns an fd of it (caller closes)."""
    mount_point(scaffold, PRIVATE_DIR, "its build directory")
    return mount_at(scaffold.root.fd, PRIVATE_DIR, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV,
                    "mode=755,size=50%")
