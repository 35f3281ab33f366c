"""A root filesystem made ready for a chroot step's container, and made
clean again.

On entry, as the step's chroot settings ask: mount points for the /dev,
/proc and /sys the runtime mounts, resolv.conf, hosts and policy-rc.d
covered by build-time copies, and (on request) a private tmpfs at
/.acigen-build.  These mounts are made in the helper's private mount
namespace, and the runtime's recursive bind of the root carries them into
the container.  On exit, after the container is gone: every mount below the
root is undone, scaffolding is taken out of the image, and the scratch
directory is removed.  The caller must be in a private mount namespace
(layers.enter_private_mount_namespace), so even a SIGKILLed helper leaves no
mount on the host.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from acigen.errors import HelperError
from acigen.helpers.chroot_run import buildfiles, kernelfs
from acigen.helpers.chroot_run.scaffold import Scaffold
from acigen.helpers.core.mountat import unmount_below
from acigen.helpers.core.mounts import mounts_below
from acigen.helpers.core.treeremove import remove_tree
from acigen.helpers.core.uninterrupted import uninterrupted
from acigen.helpers.rootfs.root import Root
from acigen.stepspec import ChrootSettings


class Sandbox:
    """`with Sandbox(root, settings, scratch, note) as box:` run the command."""

    def __init__(self, root: str, settings: ChrootSettings, scratch: str,
                 note: Callable[[str], None]) -> None:
        self.path = os.path.realpath(root)
        self.settings = settings
        self.scratch = scratch
        self.note = note
        self._placed: list[buildfiles.Placed] = []
        self._private_fd: int | None = None

    def __enter__(self) -> Sandbox:
        os.makedirs(self.scratch, exist_ok=True)
        self.root = Root(self.path)
        self.scaffold = Scaffold(self.root)
        try:
            self._prepare()
        except BaseException:
            self._leave()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._leave()

    def _prepare(self) -> None:
        s = self.settings
        try:
            kernelfs.prepare(self.scaffold, sys=s.mount_sys)
            if not s.mount_proc:
                self.note("acigen: mount_proc is off, but the OCI runtime needs a /proc: "
                          "the step gets the container's own")
            for wanted in self._build_files():
                self._placed.append(buildfiles.place(self.scaffold, self.scratch, wanted))
        except OSError as exc:
            raise HelperError(f"cannot prepare the chroot in {self.path}: {exc}") from None

    def _build_files(self) -> list[buildfiles.BuildFile]:
        s = self.settings
        wanted = [buildfiles.host_file(path, self.note) for path, on in
                  (("/etc/resolv.conf", s.copy_resolvconf), ("/etc/hosts", s.copy_hosts)) if on]
        if s.make_debian_policy_rc:
            wanted.append(buildfiles.BuildFile(buildfiles.POLICY_RC_D,
                                               buildfiles.POLICY_RC_D_SCRIPT, 0o755))
        return [w for w in wanted if w is not None]

    # -- the step's own files: a tmpfs at /.acigen-build -------------------

    def private_dir(self) -> str:
        """/.acigen-build in the image: a tmpfs that is gone after the step."""
        if self._private_fd is None:
            try:
                self._private_fd = kernelfs.mount_private_dir(self.scaffold)
            except OSError as exc:
                raise HelperError(f"cannot mount /{kernelfs.PRIVATE_DIR} in {self.path}: "
                                  f"{exc}") from None
        return "/" + kernelfs.PRIVATE_DIR

    def add_private_file(self, name: str, source: str, mode: int) -> str:
        """Copy host file SOURCE to /.acigen-build/NAME; returns its path in the image."""
        import shutil  # only for a host file: not imported at every step
        where = self.private_dir()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with open(source, "rb") as src, \
                open(os.open(name, flags, 0o600, dir_fd=self._private_fd), "wb") as out:
            shutil.copyfileobj(src, out)
            os.fchmod(out.fileno(), mode)
        return f"{where}/{name}"

    def add_private_dir(self, name: str, mode: int) -> str:
        where = self.private_dir()
        os.mkdir(name, dir_fd=self._private_fd)
        os.chmod(name, mode, dir_fd=self._private_fd)
        return f"{where}/{name}"

    # -- teardown ----------------------------------------------------------

    def _leave(self) -> None:
        with uninterrupted():
            try:
                buildfiles.report_changes(self._placed, self.note)
                if self._private_fd is not None:
                    os.close(self._private_fd)
                    self._private_fd = None
                unmount_below(self.path)
                kept = self.scaffold.remove_all()
                if kept:
                    self.note("acigen: kept what the command made of " + ", ".join(kept))
            finally:
                self.root.close()
                with contextlib.suppress(OSError, HelperError):  # best effort, as before
                    remove_tree(self.scratch)
        left = mounts_below(self.path)
        if left:
            raise HelperError(f"still mounted after the step: {left[0]}")
