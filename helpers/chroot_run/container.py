"""Run one container through an existing OCI runtime (runc or crun).

Build steps (chroot_run/job.py) and `acigen run` both start their programs
this way; what confines them is in chroot_run/confinement.py.

The runtime runs in the foreground (`RUNTIME run`), so its exit status is
the process's (128+N when a signal N killed it); its own errors go to a
JSON log in the bundle, so a program that could not start is told apart
from one that failed.  If we are interrupted (Ctrl-C, SIGTERM) the
container is stopped (for `acigen run`, TERM first and KILL after a grace
period, or KILL at once when its PID 1 has no TERM handler) and deleted,
with further signals held back until that is done; if we are killed
outright, a guard process does it (Container).

For `acigen run`, the root the app sees is a throw-away writable view of a
cached, read-only root: an overlay whose upper dir is a scratch directory
(or, where overlayfs cannot be used, a copy).  Whatever the app writes
disappears with the scratch directory; the cached root is never changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections import namedtuple
from collections.abc import Iterator

from acigen.errors import HelperError
from acigen.fileio import canonical_json
from acigen.helpers.core.linux import OVERLAYFS_MAGIC, fs_magic
from acigen.helpers.core.mountat import umount
from acigen.helpers.core.runtimes import find_runtime as find_runtime  # moved; still importable
from acigen.helpers.core.uninterrupted import uninterrupted
from acigen.helpers.core.userns import in_user_namespace
from acigen.helpers.layers.overlay import mount_overlay

TYPE_CHECKING = False  # typing costs every step ~2 ms to import (bench/chroot_run.py)
if TYPE_CHECKING:
    from typing import Any

STATE_ROOT = "/run/acigen"  # the runtime's state, one directory per runtime
STOP_GRACE = 10.0  # seconds between TERM and KILL
MNT_DETACH = 2
# The guard: reads until we say "done"; end of file without it means we
# died, and the container must go with us.
GUARD = ('read -r word; [ "$word" = done ] && exit 0; '
         '"$1" --root "$2" kill "$3" KILL; "$1" --root "$2" delete --force "$3"')


def state_dir(runtime: str, bundle: str) -> str:
    """Where the runtime keeps its containers' state: /run/acigen as root;
    rootless, $XDG_RUNTIME_DIR/acigen, else beside the bundle (in the build
    directory): a user may write nothing else."""
    name = os.path.basename(runtime)
    if not in_user_namespace():
        return os.path.join(STATE_ROOT, name)
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime_dir and os.path.isdir(runtime_dir) and os.stat(runtime_dir).st_uid == 0:
        return os.path.join(runtime_dir, "acigen", name)
    return os.path.join(os.path.dirname(os.path.abspath(bundle)), "runtime-state", name)


# -- the writable root ------------------------------------------------------------------

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
    if fs_magic(scratch) != OVERLAYFS_MAGIC:
        try:
            mount_overlay([lower], target, upper, work)
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
    import shutil  # for `acigen run`: not imported at every build step
    os.makedirs(parent, mode=0o700, exist_ok=True)
    path = os.path.join(parent, "run-" + os.urandom(6).hex())
    os.mkdir(path, 0o700)
    try:
        yield path
    finally:
        with uninterrupted():
            shutil.rmtree(path, ignore_errors=True)


# -- the runtime ------------------------------------------------------------------------------

def write_bundle(scratch: str, config: dict[str, Any], rootfs: str) -> str:
    bundle = os.path.join(scratch, "bundle")
    os.makedirs(bundle, mode=0o700)
    config = dict(config, root=dict(config["root"], path=os.path.abspath(rootfs)))
    with open(os.path.join(bundle, "config.json"), "wb") as out:
        out.write(canonical_json(config))  # C-encoded: indenting costs ~0.5 ms a step
    return bundle


class Ended(namedtuple("Ended", ("status", "error"), defaults=(None,))):
    """How a container's process ended: STATUS, the runtime's exit status (the
    process's, or 128+N for signal N), and ERROR, the runtime's message when
    it could not start the process.  (A namedtuple: every step imports this.)"""

    __slots__ = ()
    status: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 0

    def describe(self) -> str:
        if self.error is not None:
            return f"could not run: {self.error}"
        text = f"exited with status {self.status}"
        with contextlib.suppress(ValueError):
            if self.status > 128:
                text += f" (as when killed by {signal.Signals(self.status - 128).name})"
        return text


class Container:
    """One container of an OCI runtime, run in the foreground of a helper,
    killed and deleted however that helper ends.

    `start()` then `wait()` (or `run()` for both).  A guard, a shell in a
    session of its own, waits on a pipe that only this process holds: if we
    die without saying "done" (SIGKILL), it kills and deletes the container,
    so nothing of it is left running or in the runtime's state."""

    def __init__(self, runtime: str, bundle: str, grace: float = 0.0) -> None:
        self.runtime = runtime
        self.bundle = bundle
        self.grace = grace  # seconds between TERM and KILL when we stop it; 0: KILL at once
        # os.urandom, not uuid: uuid imports platform, ~1.5 ms at every step
        self.name = f"acigen-{os.getpid()}-{os.urandom(4).hex()}"
        self.state = state_dir(runtime, bundle)
        self.log = os.path.abspath(os.path.join(bundle, "runtime.log"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._guard_w: int | None = None
        self._guard: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [self.runtime, "--root", self.state, *args]

    def start(self, stdin: int | None = None, stdout: int | None = None,
              stderr: int | None = None) -> None:
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        try:
            self._spawn(stdin, stdout, stderr)
        except BaseException:  # a signal held back while spawning arrives here
            self.stop(self.grace)
            self._finish()
            raise

    def _spawn(self, stdin: int | None, stdout: int | None, stderr: int | None) -> None:
        with uninterrupted():  # a signal here would lose track of what we started
            self._start_guard()
            self._proc = subprocess.Popen(
                [self.runtime, "--root", self.state, "--log", self.log, "--log-format", "json",
                 "run", "--bundle", self.bundle, self.name],
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=stdout, stderr=stderr)

    def wait(self) -> Ended:
        assert self._proc is not None
        try:
            status = self._proc.wait()
        except BaseException:
            self.stop(self.grace)
            raise
        finally:
            self._finish()
        return Ended(status, self._start_error())

    def run(self, stdin: int | None = None, stdout: int | None = None,
            stderr: int | None = None) -> Ended:
        self.start(stdin, stdout, stderr)
        return self.wait()

    def stop(self, grace: float = 0.0) -> None:
        """Stop the container: TERM first when GRACE is given, then KILL."""
        with uninterrupted():
            proc = self._proc
            if grace and not self._init_catches(signal.SIGTERM):
                grace = 0.0  # the kernel drops TERM for a namespace's init without a handler
            signals = (("TERM", grace), ("KILL", STOP_GRACE)) if grace else (("KILL", STOP_GRACE),)
            for name, wait in signals:
                subprocess.run(self.command("kill", self.name, name), capture_output=True)
                if proc is None:
                    return
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=wait)
                    return
            if proc is not None:
                proc.kill()
                proc.wait()

    def _init_catches(self, signum: int) -> bool:
        """Whether the container's PID 1 has a handler for SIGNUM (its SigCgt
        mask); True when that cannot be told, so the grace period is kept."""
        state = subprocess.run(self.command("state", self.name), capture_output=True, text=True)
        try:
            pid = int(json.loads(state.stdout)["pid"])
            with open(f"/proc/{pid}/status") as src:
                caught = next(line.split()[1] for line in src if line.startswith("SigCgt:"))
        except (ValueError, KeyError, TypeError, OSError, StopIteration):
            return True
        return bool(int(caught, 16) >> (signum - 1) & 1)

    def _finish(self) -> None:
        with uninterrupted():
            if os.path.lexists(os.path.join(self.state, self.name)):
                # `run` deletes a container whose process ended; one it
                # could not start, or that we stopped, may still be there
                subprocess.run(self.command("delete", "--force", self.name),
                               capture_output=True)
            if self._guard_w is not None:
                with contextlib.suppress(OSError):
                    os.write(self._guard_w, b"done\n")
                os.close(self._guard_w)
                self._guard_w = None
            if self._guard is not None:
                self._guard.wait()  # it exits at once on "done"

    def _start_guard(self) -> None:
        read_end, self._guard_w = os.pipe2(os.O_CLOEXEC)
        try:
            argv = ["/bin/sh", "-c", GUARD, "acigen-guard", self.runtime, self.state, self.name]
            self._guard = subprocess.Popen(argv, stdin=read_end, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True,
                                           cwd="/")
        finally:
            os.close(read_end)

    def _start_error(self) -> str | None:
        """The runtime's own error, when it could not start the process."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as src:
                lines = src.read().splitlines()
        except OSError:
            return None
        for line in lines:
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "fatal"):
                    return _short_error(str(entry.get("msg", "")))
        return None


def _short_error(message: str) -> str:
    """runc's 'runc run failed: unable to start container process: exec: ...'
    is said as what failed."""
    for prefix in ("runc run failed: ", "unable to start container process: ", "exec: "):
        message = message.removeprefix(prefix)
    return message
