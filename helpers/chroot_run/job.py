"""What the cmd and ansible steps share: where they run, how they report.

A step's program runs as PID 1 of a container of an OCI runtime (runc or
crun), whose root is the step's merged layer view, confined as chroot_run/confinement.py
says (the containers default capabilities and seccomp profile, no new
privileges, masked and read-only /proc and /sys paths, a pids limit).
When that process ends, the kernel kills whatever it left running.

A chroot step's program never sees the host's environment.  It gets:

    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root  LANG=C.UTF-8  TERM=dumb  DEBIAN_FRONTEND=noninteractive

(a cmd step's `env` is merged over these).  Its stdin is /dev/null and its
output goes to the step's log.  When it fails, the helper's error says how
(exit status or signal), shows the log's last lines and names the log; the
helper then exits with status 1 (ninja shows FAILED whatever the status,
and 1 keeps "failed" apart from 3, an acigen bug, and 130, interrupted).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections import deque, namedtuple
from collections.abc import Iterator

from acigen.errors import HelperError
from acigen.helpers.chroot_run import confinement
from acigen.helpers.chroot_run.container import Container, Ended, find_runtime, write_bundle
from acigen.helpers.chroot_run.sandbox import Sandbox
from acigen.helpers.chroot_run.startable import why_not_startable
from acigen.helpers.core import userns
from acigen.stepspec import DEFAULT_PATH, ChrootSettings

TYPE_CHECKING = False  # typing costs every step ~2 ms to import (bench/chroot_run.py)
if TYPE_CHECKING:
    from typing import Any, TextIO

BASE_ENV = {
    "PATH": DEFAULT_PATH,
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
}
LOG_TAIL_LINES = 20
# The containers default set was enough for every package manager we tried
# (apt and dpkg installing nginx, ansible's apt, copy, template and user
# modules): they chown, chmod, and drop to users like _apt, nothing more.
BUILD_CAPABILITIES = confinement.DEFAULT_CAPABILITIES


class Job:
    """One chroot step's surroundings, whether ninja or a person started it.
    (Plain classes and namedtuples here: dataclasses cost every step ~5 ms.)"""

    def __init__(self, root: str, scratch: str, label: str, log: TextIO,
                 log_path: str | None = None, interactive: bool = False,
                 inputs: list[str] | None = None, runtime: str | None = None) -> None:
        self.root = root  # the root filesystem to change
        self.scratch = scratch  # a directory of ours outside the root; removed afterwards
        self.label = label
        self.log = log  # notes from acigen; the program's output too, unless interactive
        self.log_path = log_path
        self.interactive = interactive  # by hand: the program gets our stdin, stdout, stderr
        self.inputs = [] if inputs is None else inputs  # host files read, for the depfile
        self.runtime = runtime  # runc, crun or a path; None: find_runtime's choice

    def note(self, line: str) -> None:
        print(line, file=self.log, flush=True)

    def streams(self) -> tuple[int | None, int, int]:
        if self.interactive:
            return (0, 1, 2)
        self.log.flush()
        return (None, self.log.fileno(), self.log.fileno())


class Process(namedtuple("Process", ("argv", "env", "cwd", "network"), defaults=("host",))):
    """What runs as the container's first process (its PID 1): ARGV, ENV, CWD
    (inside the image) and NETWORK: "host", or "none" (a namespace of its
    own with only loopback)."""

    __slots__ = ()
    argv: list[str]
    env: dict[str, str]
    cwd: str
    network: str


NETWORKS = ("host", "none")


def network_of(step: dict[str, Any]) -> str:
    network = step.get("network", "host")
    if network not in NETWORKS:
        raise HelperError(f"step: network: expected \"host\" or \"none\", got {network!r}")
    return str(network)


def step_config(settings: ChrootSettings, process: Process) -> dict[str, Any]:
    """The runtime config of a step's container (its root is set by write_bundle).

    /proc is always mounted: the runtime cannot start a process without it
    (it is the container's own, masked and partly read-only, never the
    host's), so mount_proc: false only stops us from asking for nothing.
    /dev is always the runtime's tmpfs, since the runtime makes its standard
    nodes there whatever the config says, and they must not reach the layer;
    mount_dev adds devpts, /dev/shm and /dev/mqueue."""
    rootless = userns.in_user_namespace()
    if userns.mode() == "single":
        raise HelperError("cmd and ansible steps need ids other than 0 (package managers "
                          f"chown and setgroups), and this user has no subordinate ids; "
                          f"{userns.add_range_hint()}")
    mounts = confinement.proc_mounts()
    mounts += confinement.dev_mounts(full=settings.mount_dev)
    mounts += confinement.sys_mounts(bind=rootless) if settings.mount_sys else []
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": process.argv,
            "env": [f"{name}={value}" for name, value in process.env.items()],
            "cwd": process.cwd,
            "capabilities": confinement.capability_sets(BUILD_CAPABILITIES),
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "mounts": mounts,
        "linux": confinement.linux_section(
            BUILD_CAPABILITIES, network=process.network == "host",
            pids_limit=None if rootless else confinement.PIDS_LIMIT),
    }


def step_container(job: Job, box: Sandbox, process: Process) -> Container:
    """The step's container, its bundle written, not started yet."""
    bundle = write_bundle(job.scratch, step_config(box.settings, process), box.path)
    return Container(find_runtime(job.runtime), bundle)


def start_container(job: Job, box: Sandbox, process: Process,
                    stdin: int | None = None) -> Container:
    """The step's container, started (for a program that keeps running
    while acigen talks to it: the ansible step)."""
    container = step_container(job, box, process)
    _, out, err = job.streams()
    container.start(stdin, out, err)
    return container


def run_program(job: Job, box: Sandbox, process: Process) -> Ended:
    """Run PROCESS in the step's container; returns when it and all it started are gone."""
    reason = why_not_startable(box.root, process.argv[0], process.env.get("PATH", DEFAULT_PATH),
                               process.cwd)
    if reason is not None:
        return Ended(127, reason)
    container = step_container(job, box, process)
    with _terminal_signals_go_to_the_program(job.streams()[0]):
        return container.run(*job.streams())


@contextlib.contextmanager
def _terminal_signals_go_to_the_program(stdin: int | None) -> Iterator[None]:
    """By hand, on a terminal, Ctrl-C and Ctrl-\\ are for the program (an
    interactive shell, say), as with system(3); we wait for it to end."""
    if stdin is None or not os.isatty(stdin) \
            or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT,
                                                                    signal.SIGQUIT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def require_success(job: Job, what: str, ended: Ended) -> None:
    """Raise the step's error when the program failed."""
    if ended.ok:
        return
    hint = f"the whole output is in {job.log_path}" if job.log_path else None
    raise HelperError(f"{job.label}: {what} {ended.describe()}", hint=hint,
                      detail=log_tail(job.log_path))


def summary(what: str, seconds: float) -> str:
    return f"{what}: done in {seconds:.1f}s"


def log_tail(path: str | None, lines: int = LOG_TAIL_LINES) -> list[str]:
    if not path:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as src:
            return [line.rstrip("\n") for line in deque(src, maxlen=lines)]
    except OSError:
        return []


def require_host_file(path: str, what: str) -> str:
    """PATH (relative to the build directory) must be a regular file on the host."""
    if not os.path.isfile(path):
        state = "is not a regular file" if os.path.lexists(path) else "does not exist"
        raise HelperError(f"{what} {path} {state} (paths are relative to {os.getcwd()})")
    return path
