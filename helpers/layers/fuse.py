"""fuse-overlayfs: the layers' views where the kernel's overlayfs cannot be
mounted (a rootless build on a kernel before 5.11, or in a build directory
on a filesystem it refuses as an upper dir, such as FUSE), before copy mode.

fuse-overlayfs runs in the foreground as our child, in our (private) mount
namespace, and dies with us (its parent-death signal, set by util-linux's
setpriv, which then execs it: no code of ours runs between fork and exec,
where another thread's lock could hang it): a kernel mount vanishes with
the namespace, but a FUSE daemon would keep the namespace, and so itself,
alive for ever.  A view is unmounted when its block ends, and the daemon
waited for.

What it leaves in an upper dir differs from the kernel's, and
fusenorm.normalize() makes it the same (see there), so layers, the images
packed from them and their OCI layers are the same whichever mode made them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence

from acigen.errors import HelperError
from acigen.helpers.core import linux
from acigen.helpers.core.uninterrupted import uninterrupted
from acigen.helpers.layers.overlay import relative_options

PROGRAM = "fuse-overlayfs"
FUSE_SUPER_MAGIC = 0x65735546  # statfs f_type of a FUSE mount
DEVICE = "/dev/fuse"
MOUNT_TIMEOUT = 30.0  # seconds for the daemon to mount
STOP_TIMEOUT = 10.0  # seconds for it to end after the unmount


def available() -> bool:
    """Whether fuse-overlayfs is installed and this process may open /dev/fuse."""
    return shutil.which(PROGRAM) is not None and os.access(DEVICE, os.R_OK | os.W_OK)


@contextlib.contextmanager
def mounted(lower: Sequence[str], target: str, upper: str | None = None,
            work: str | None = None) -> Iterator[None]:
    """fuse-overlayfs of LOWER (nearest first) at TARGET, writable with UPPER
    and WORK, read-only without; unmounted when the block ends."""
    program = shutil.which(PROGRAM)
    setpriv = shutil.which("setpriv")
    if program is None or setpriv is None:
        raise HelperError(f"layer mode fuse needs {PROGRAM} and setpriv, and one is not "
                          "installed", hint="apt-get install fuse-overlayfs util-linux, or "
                                            "use --layer-mode copy")
    base, opts, rel_target = relative_options(lower, target, upper, work)
    unmounted = os.stat(target).st_dev
    with tempfile.TemporaryFile() as errors:
        with uninterrupted():  # a signal here would lose track of the daemon
            daemon = subprocess.Popen([setpriv, "--pdeathsig", "KILL", "--", program, "-f",
                                       "-o", opts, rel_target], cwd=base,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=errors)
        try:
            _wait_mounted(daemon, target, unmounted, errors)
            yield
        finally:
            with uninterrupted():
                _unmount(daemon, target)


def _wait_mounted(daemon: subprocess.Popen[bytes], target: str, unmounted: int,
                  errors: object) -> None:
    """Until TARGET is the daemon's mount: a FUSE filesystem other than the
    one (device UNMOUNTED) it lay on before, which can be FUSE too (a build
    directory on bindfs or sshfs)."""
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while not _is_new_fuse_mount(target, unmounted):
        if daemon.poll() is not None or time.monotonic() > deadline:
            errors.seek(0)  # type: ignore[attr-defined]
            said = errors.read().decode(errors="replace").strip()  # type: ignore[attr-defined]
            lines = [x for x in said.splitlines() if "unknown argument ignored" not in x]
            raise HelperError(f"cannot mount the layers with {PROGRAM}: "
                              + (lines[-1] if lines else "it did not mount in time"),
                              hint="rerun acigen with --layer-mode copy")
        time.sleep(0.002)


def _is_new_fuse_mount(target: str, unmounted: int) -> bool:
    return (linux.fs_magic(target) == FUSE_SUPER_MAGIC
            and os.stat(target).st_dev != unmounted)


def _unmount(daemon: subprocess.Popen[bytes], target: str) -> None:
    if daemon.poll() is None:
        try:
            linux.umount(target, 0)
        except OSError:  # busy: a process of the step still holds a file there
            with contextlib.suppress(OSError):
                linux.umount(target, linux.MNT_DETACH)
    try:
        daemon.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
