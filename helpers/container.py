"""Run one container through an existing OCI runtime (runc or crun).

The root the app sees is a throw-away writable view of a cached, read-only
root: an overlay whose upper dir is a scratch directory (or, where overlayfs
cannot be used, a copy).  Whatever the app writes disappears with the
scratch directory; the cached root is never changed.

The runtime runs in the foreground (`RUNTIME run`), so its exit status is
the app's (128+N when a signal N killed it).  If we are interrupted (Ctrl-C,
SIGTERM) the container is stopped (TERM, then KILL after a grace period)
and deleted; the overlay is unmounted and the scratch directory removed,
with further signals held back until that is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

from acigen.helpers import layers
from acigen.helpers.common import HelperError
from acigen.helpers.mountat import umount
from acigen.helpers.uninterrupted import uninterrupted

RUNTIMES = ("runc", "crun")
STATE_ROOT = "/run/acigen-run"
STOP_GRACE = 10.0  # seconds between TERM and KILL
MNT_DETACH = 2


def find_runtime(requested: str | None) -> str:
    """The runtime to use: REQUESTED, $ACIGEN_RUNTIME, else runc, else crun."""
    wanted = requested or os.environ.get("ACIGEN_RUNTIME")
    candidates = [wanted] if wanted else list(RUNTIMES)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    raise HelperError(f"no OCI runtime found (looked for {', '.join(candidates)})",
                      "install one: apt-get install runc (or crun)")


# -- the writable root ------------------------------------------------------------------

def _mount_overlay(lower: str, upper: str, work: str, target: str) -> None:
    # relative paths from a common directory: ',' or ':' in a path would
    # break the option string
    paths = [os.path.abspath(p) for p in (lower, upper, work, target)]
    base = os.path.commonpath(paths)
    low, up, wk, tgt = (os.path.relpath(p, base) for p in paths)
    old = os.getcwd()
    os.chdir(base)
    try:
        layers.mount("overlay", tgt, "overlay", 0,
                     f"lowerdir={low},upperdir={up},workdir={wk},index=off,metacopy=off")
    finally:
        os.chdir(old)


@contextlib.contextmanager
def writable_root(lower: str, scratch: str) -> Iterator[str]:
    """A writable view of LOWER whose changes live in SCRATCH only.

    Call inside a private mount namespace (layers.enter_private_mount_namespace)."""
    target = os.path.join(scratch, "rootfs")
    upper, work = os.path.join(scratch, "upper"), os.path.join(scratch, "work")
    for directory in (target, upper, work):
        os.makedirs(directory)
    st = os.stat(lower)
    os.chown(upper, st.st_uid, st.st_gid)
    os.chmod(upper, st.st_mode & 0o7777)
    mounted = False
    if layers.fs_magic(scratch) != layers.OVERLAYFS_MAGIC:
        try:
            _mount_overlay(lower, upper, work, target)
            mounted = True
        except OSError:
            pass
    if not mounted:  # a copy: slower, the same isolation
        result = subprocess.run(["cp", "-a", "--reflink=auto", lower + "/.", target + "/"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise HelperError(f"cannot copy the image's root: {result.stderr.strip()}")
    try:
        yield target
    finally:
        if mounted:
            with uninterrupted():
                umount(target, MNT_DETACH)


@contextlib.contextmanager
def scratch_dir(parent: str) -> Iterator[str]:
    os.makedirs(parent, mode=0o700, exist_ok=True)
    path = os.path.join(parent, "run-" + uuid.uuid4().hex[:12])
    os.mkdir(path, 0o700)
    try:
        yield path
    finally:
        with uninterrupted():
            shutil.rmtree(path, ignore_errors=True)


# -- the runtime ------------------------------------------------------------------------------

def write_bundle(scratch: str, config: dict[str, Any], rootfs: str) -> str:
    bundle = os.path.join(scratch, "bundle")
    os.makedirs(bundle)
    config = dict(config, root=dict(config["root"], path=os.path.abspath(rootfs)))
    with open(os.path.join(bundle, "config.json"), "w", encoding="utf-8") as out:
        json.dump(config, out, indent=2)
    return bundle


class Container:
    """One `RUNTIME run` in the foreground, stopped and deleted however it ends."""

    def __init__(self, runtime: str, bundle: str) -> None:
        self.runtime = runtime
        self.bundle = bundle
        self.name = f"acigen-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.state = os.path.join(STATE_ROOT, os.path.basename(runtime))

    def command(self, *args: str) -> list[str]:
        return [self.runtime, "--root", self.state, *args]

    def run(self) -> int:
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        proc = subprocess.Popen(self.command("run", "--bundle", self.bundle, self.name))
        try:
            return proc.wait()
        except BaseException:
            with uninterrupted():
                self.stop(proc)
            raise
        finally:
            with uninterrupted():
                subprocess.run(self.command("delete", "--force", self.name),
                               capture_output=True)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        for signal_name, grace in (("TERM", STOP_GRACE), ("KILL", STOP_GRACE)):
            subprocess.run(self.command("kill", self.name, signal_name), capture_output=True)
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
        proc.kill()
        proc.wait()
