"""Layers: each step owns a directory holding only its changes.

A layer directory `LAYER/` holds `tree/` (the step's own changes: the
overlayfs upper dir), `work/` (overlayfs' work dir) and `mnt/` (where the
merged view is mounted).  A step sees the merged view of the layers below it
plus its own; the mount lives in a private mount namespace, so it vanishes
when the helper exits, however it exits.

Fuse mode (rootless, where the kernel will not mount overlayfs in a user
namespace): the same layers, mounted by fuse-overlayfs (fuse.py), whose
upper dirs are then put in the kernel's form (fusenorm.py).

Copy mode (for build directories where neither can be used, e.g. one
that is itself on overlayfs): `tree/` holds the whole root, snapshotted from
the parent's tree before the step runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator, Sequence

from acigen.errors import HelperError
from acigen.helpers.core.filelock import lock_fd
from acigen.helpers.core.linux import (
    CLONE_NEWNS,
    MNT_DETACH,
    MS_REC,
    OVERLAYFS_MAGIC,
    fs_magic,
    mount,
    umount,
    unshare,
)
from acigen.helpers.core.treeremove import remove_tree
from acigen.helpers.core.userns import in_user_namespace
from acigen.helpers.core.userns import mode as userns_mode
from acigen.helpers.layers import fuse, fusenorm
from acigen.helpers.layers.overlay import mount_overlay

MS_SLAVE = 0x80000

_in_private_namespace = False


def enter_private_mount_namespace() -> None:
    """Give this process its own mount namespace; nothing we mount is
    visible to (or left behind on) the host, and what the host unmounts
    leaves ours too.

    Call it in the main thread before any other thread starts: threads
    created later inherit the namespace, earlier ones would not.
    """
    global _in_private_namespace
    if _in_private_namespace:
        return
    if os.geteuid() != 0:
        raise HelperError("this step needs root (it mounts the layers of the image)",
                          hint="run the build with sudo")
    unshare(CLONE_NEWNS)
    # slave, not private: our mounts still never reach the host, but a host
    # unmount reaches us, so the copies of unrelated host mounts that every
    # new namespace starts with never keep a filesystem the user unmounts busy
    mount(None, "/", None, MS_REC | MS_SLAVE)
    _in_private_namespace = True


def choose_mode(requested: str, layers_dir: str) -> str:
    """overlay unless asked otherwise or the build dir is on overlayfs;
    rootless, overlay only where the kernel mounts it in a user namespace,
    else fuse-overlayfs where this user may use it, else copy."""
    make_private(layers_dir)
    if requested != "auto":
        return requested
    if fs_magic(layers_dir) == OVERLAYFS_MAGIC:
        return "copy"
    if in_user_namespace() and not _overlay_mounts(layers_dir):
        return "fuse" if fuse.available() else "copy"
    return "overlay"


def describe_mode(mode: str) -> str:
    """The layer mode as the build's output names it: 'overlay (userns)'..."""
    return f"{mode} ({userns_mode()})" if in_user_namespace() else mode


def _overlay_mounts(layers_dir: str) -> bool:
    """Whether an overlay with our options mounts here (a scratch probe)."""
    enter_private_mount_namespace()
    probe = os.path.join(layers_dir, f".probe-{os.getpid()}")
    parts = [os.path.join(probe, name) for name in ("lower", "upper", "work", "mnt")]
    try:
        for part in parts:
            os.makedirs(part)
        mount_overlay([parts[0]], parts[3], parts[1], parts[2])
        umount(parts[3], MNT_DETACH)
        return True
    except OSError:
        return False
    finally:
        wipe(probe)


def make_private(directory: str) -> None:
    """DIRECTORY, made or kept 0700 and root's own.  Layer trees hold an image's
    setuid programs, file capabilities and device nodes with the image's
    modes: only root may reach them (as with /var/lib/containers)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)


def tree(layer: str) -> str:
    return os.path.join(layer, "tree")


def wipe(layer: str) -> None:
    """Remove a layer's contents (an earlier, maybe interrupted, run)."""
    if os.path.lexists(layer):
        _make_removable(layer)
        remove_tree(layer)  # not shutil.rmtree: it recurses, and a layer can be deep


def _make_removable(layer: str) -> None:
    # overlayfs leaves work/work with mode 000
    work = os.path.join(layer, "work", "work")
    if os.path.isdir(work) and not os.path.islink(work):
        os.chmod(work, 0o700)


# -- locks: who may redo a layer, who reads it --------------------------------
#
# LAYER.lock: a step holds its own layer's exclusively and those below it
# shared; a pack holds all of its layers' shared.  So no layer is redone
# (wiped) while any process reads it, and two builds never write one layer
# at once.  Locks are taken bottom layer first, in every process: no deadlock.

def _lock(layer: str, kind: int) -> int:
    os.makedirs(os.path.dirname(layer) or ".", exist_ok=True)
    return lock_fd(layer + ".lock", kind)


@contextlib.contextmanager
def _holding(shared: Sequence[str], exclusive: str | None = None) -> Iterator[None]:
    """SHARED (nearest first) locked shared, then EXCLUSIVE exclusively."""
    fds: list[int] = []
    try:
        for below in reversed(shared):
            fds.append(_lock(below, fcntl.LOCK_SH))
        if exclusive is not None:
            fds.append(_lock(exclusive, fcntl.LOCK_EX))
        yield
    finally:
        for fd in fds:
            os.close(fd)


def locked(layer: str, lower: Sequence[str] = ()) -> contextlib.AbstractContextManager[None]:
    """Hold LAYER to redo it, and the layers LOWER (nearest first) to read them."""
    return _holding(lower, layer)


def reading(layers: Sequence[str]) -> contextlib.AbstractContextManager[None]:
    """Hold LAYERS (nearest first) so that nobody redoes them while we read."""
    return _holding(layers)


def _overlay(lower: Sequence[str], mnt: str, upper: str | None = None,
             work: str | None = None) -> None:
    try:
        mount_overlay(lower, mnt, upper, work)
    except OSError as exc:
        raise HelperError(f"cannot mount the layers of the image: {exc}",
                          hint="rerun acigen with --layer-mode copy") from None


@contextlib.contextmanager
def writable_view(layer: str, lower: Sequence[str], mode: str) -> Iterator[str]:
    """A fresh LAYER over LOWER (nearest first); yields the root to change."""
    if not _in_private_namespace:
        raise RuntimeError("enter_private_mount_namespace() first")
    _check_present(lower)
    wipe(layer)
    os.makedirs(tree(layer))
    if mode == "copy":
        if lower:
            _snapshot(tree(lower[0]), tree(layer))
        yield tree(layer)
        return
    if not lower:
        yield tree(layer)
        return
    work, mnt = os.path.join(layer, "work"), os.path.join(layer, "mnt")
    os.makedirs(work)
    os.makedirs(mnt)
    _same_root_attrs(tree(lower[0]), tree(layer))
    lower_trees = [tree(p) for p in lower]
    if mode == "fuse":
        with fuse.mounted(lower_trees, mnt, tree(layer), work):
            yield mnt
        _kernel_form(tree(layer), lower_trees)
        return
    _overlay(lower_trees, mnt, tree(layer), work)
    yield mnt


def _kernel_form(upper: str, lower: Sequence[str]) -> None:
    """A fuse-overlayfs upper dir made the kernel's: the same layer either way."""
    try:
        fusenorm.normalize(upper, lower)
    except OSError as exc:
        raise HelperError(f"cannot put the layer fuse-overlayfs wrote in overlayfs' form: "
                          f"{exc}", hint="rerun acigen with --layer-mode copy") from None


def _check_present(layers: Sequence[str]) -> None:
    missing = [p for p in layers if not os.path.isdir(tree(p))]
    if missing:
        raise HelperError(f"layer {missing[0]} is missing",
                          hint="remove the build directory's stamps, or run `acigen clean`")


def _same_root_attrs(src: str, dst: str) -> None:
    """overlayfs shows the upper dir's owner, mode and times for the root of
    the merged view: give the fresh upper those of the root below."""
    st = os.lstat(src)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, st.st_mode & 0o7777)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


@contextlib.contextmanager
def readonly_view(layers: Sequence[str], mode: str, mnt: str) -> Iterator[str]:
    """The merged root of LAYERS (nearest first), read-only where mounted."""
    if not layers:
        raise HelperError("the image has no build steps, so no root filesystem")
    _check_present(layers)
    if mode == "copy" or len(layers) == 1:
        yield tree(layers[0])
        return
    if not _in_private_namespace:
        raise RuntimeError("enter_private_mount_namespace() first")
    os.makedirs(mnt, exist_ok=True)
    if mode == "fuse":
        with fuse.mounted([tree(p) for p in layers], mnt):
            yield mnt
        return
    _overlay([tree(p) for p in layers], mnt)
    yield mnt


def _snapshot(src: str, dst: str) -> None:
    """Copy a whole tree: owners, modes, times, xattrs, hard links, devices."""
    result = subprocess.run(["cp", "-a", "--reflink=auto", src + "/.", dst + "/"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise HelperError(f"cannot snapshot {src}: {result.stderr.strip()}")
