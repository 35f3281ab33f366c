"""Mount points in the image for the step's /dev, /proc and /sys, and its
private directory.

The runtime mounts the kernel filesystems themselves (see chroot_job and
confinement): none of them is the host's, and whatever the command writes
under them is gone with the mounts, so it never reaches the layer.  Here we
only make sure each mount point is a real directory at the top of the image
(made for the step and taken out afterwards when the image has none).  A
symlink there (`proc -> /etc`) is refused: following it, even inside the
root, would mount over some other part of the image.
"""

from __future__ import annotations

import os
import stat

from acigen.errors import HelperError
from acigen.helpers.chroot_run.scaffold import Scaffold
from acigen.helpers.core.linux import MS_NODEV, MS_NOSUID
from acigen.helpers.core.mountat import mount_at

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


def prepare(scaffold: Scaffold, sys: bool) -> None:
    """Sound mount points for what the runtime mounts: /dev and /proc always
    (see chroot_job.step_config), /sys if asked."""
    for name, wanted in (("dev", True), ("proc", True), ("sys", sys)):
        if wanted:
            mount_point(scaffold, name, "/" + name)


def mount_private_dir(scaffold: Scaffold) -> int:
    """A tmpfs at /.acigen-build; returns an fd of it (caller closes)."""
    mount_point(scaffold, PRIVATE_DIR, "its build directory")
    return mount_at(scaffold.root.fd, PRIVATE_DIR, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV,
                    "mode=755,size=50%")
