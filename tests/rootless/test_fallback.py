"""Layer mode auto, rootless, where the kernel's overlayfs refuses the build
directory: fuse-overlayfs where the user may open /dev/fuse, else copy mode;
the build names the mode it chose, and the image is the same as root's.

The refusal is the kernel's own, not a switch: the build directory lies on a
FUSE filesystem (bindfs run by root with allow_other: a plain view of a
directory the user owns).  overlayfs treats FUSE as a remote filesystem and
refuses it as an upper dir, since it has no RENAME_WHITEOUT ("upper fs
missing required features"), while fuse-overlayfs and cp work on it.
bindfs, not fuse-overlayfs, is the FUSE filesystem under the build: the
latter has permission and xattr rules of its own, and the test would show
those instead of acigen's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acigen.helpers.core.linux import MNT_DETACH, fs_magic, umount
from acigen.helpers.layers.fuse import FUSE_SUPER_MAGIC
from tests.rootless.conftest import USER
from tests.rootless.test_fuse import _fuse_daemons, _markers, _prepared
from tests.rootless.test_rootless import _build, _same_files
from tests.support import rootless
from tests.support.leaks import mounts_under, processes_under

pytestmark = pytest.mark.usefixtures("no_mount_leaks")

ARGS = ["--oci", "m.oci.tar", "m.json"]
MOUNT_TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def tools() -> None:
    for tool in ("fuse-overlayfs", "bindfs", "setfacl", "getfacl", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install fuse-overlayfs bindfs "
                        "acl util-linux)")


@contextlib.contextmanager
def _fuse_filesystem(area: Path, owner: str) -> Iterator[Path]:
    """A directory on a FUSE filesystem that OWNER may write (bindfs, run by
    root: a plain view of a directory OWNER owns), while the block runs;
    unmounted and its daemon waited for afterwards."""
    source, mnt = area / "fusefs" / "source", area / "fusefs" / "mnt"
    for part in (source, mnt):
        part.mkdir(parents=True)
    shutil.chown(source, owner, owner)
    daemon = subprocess.Popen(["bindfs", "-f", "-o", "allow_other", str(source), str(mnt)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while fs_magic(str(mnt)) != FUSE_SUPER_MAGIC:
            assert daemon.poll() is None and time.monotonic() < deadline, "no FUSE mount"
            time.sleep(0.01)
        yield mnt
    finally:
        if fs_magic(str(mnt)) == FUSE_SUPER_MAGIC:
            umount(str(mnt), MNT_DETACH)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _kernel_overlay_refused(directory: Path, user: str) -> bool:
    """Whether the kernel refuses USER an overlay with its upper dir in
    DIRECTORY, in a user namespace (as a rootless build's probe mounts it)."""
    probe = directory / "probe"
    probe.mkdir()
    shutil.chown(probe, user, user)
    script = ("mkdir l u w m && exec mount -t overlay overlay "
              "-o lowerdir=l,upperdir=u,workdir=w,userxattr m")
    done = rootless.as_user(user, ["unshare", "-Urm", "sh", "-c", script], probe, timeout=60)
    subprocess.run(["rm", "-rf", str(probe)], check=True)
    return done.returncode != 0


def _may_open_fuse(user: str) -> bool:
    done = rootless.as_user(user, ["sh", "-c", "exec 3<>/dev/fuse"], Path("/"), timeout=60)
    return done.returncode == 0


def _root_build(area: Path, python: str, mode: str) -> Path:
    """The build as root in layer mode MODE, on an ordinary filesystem."""
    root = _prepared(area, f"root-{mode}")
    _build(python, root, ["--layer-mode", mode, *ARGS], None)
    return root


@contextlib.contextmanager
def _build_on_fuse(area: Path, python: str) -> Iterator[tuple[Path, str]]:
    """The build as USER, layer mode auto, in a build directory on the FUSE
    filesystem; yields (its directory, its output) while that is mounted."""
    with _fuse_filesystem(area, USER) as fusefs:
        assert _kernel_overlay_refused(fusefs, USER)
        user = _prepared(fusefs, "user")
        yield user, _build(python, user, ARGS, USER).stdout
    assert not mounts_under([area])
    assert not processes_under([area])


def _modes_named(out: str) -> list[str]:
    """The layer mode each step's line names."""
    return [x.rsplit("(layers: ", 1)[1] for x in out.splitlines() if "(layers: " in x]


def test_auto_falls_back_to_fuse_overlayfs_where_overlayfs_is_refused(
        area: Path, python: str) -> None:
    """/dev/fuse open to the user: auto picks fuse, says so on every step,
    and the image and OCI layers are root's overlay build's, byte for byte."""
    root = _root_build(area, python, "overlay")
    with rootless.fuse_device_for(USER):
        assert _may_open_fuse(USER)
        with _build_on_fuse(area, python) as (user, out):
            assert _modes_named(out) == ["fuse (userns))"] * 3, out
            _same_files(root, user, ["m.aci", "m.oci.tar"])
            assert _markers(user) == []
    assert _fuse_daemons(area) == []


def test_auto_falls_back_to_copy_where_fuse_is_closed_too(area: Path, python: str) -> None:
    """/dev/fuse root's alone (0600, no entry for the user): auto falls back
    to copy mode and says so; the image is again root's overlay build's, byte
    for byte, and the OCI layers root's copy-mode build's (copy mode writes a
    replaced directory's whiteouts entry by entry, overlay an opaque marker)."""
    if os.stat("/dev/fuse").st_mode & 0o006:
        pytest.skip("/dev/fuse is open to every user on this host")
    overlay, copy = (_root_build(area, python, mode) for mode in ("overlay", "copy"))
    assert not _may_open_fuse(USER)
    with _build_on_fuse(area, python) as (user, out):
        assert _modes_named(out) == ["copy (userns))"] * 3, out
        _same_files(overlay, user, ["m.aci"])
        _same_files(copy, user, ["m.oci.tar"])
