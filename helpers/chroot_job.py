"""What the cmd and ansible steps share: where they run, how they report.

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

import os
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from acigen.helpers import pidns
from acigen.helpers.common import HelperError
from acigen.helpers.sandbox import Sandbox

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENV = {
    "PATH": DEFAULT_PATH,
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
}
LOG_TAIL_LINES = 20


@dataclass
class Job:
    """One chroot step's surroundings, whether ninja or a person started it."""

    root: str  # the root filesystem to change
    scratch: str  # a directory of ours outside the root; removed afterwards
    label: str
    log: TextIO  # notes from acigen; the program's output too, unless interactive
    log_path: str | None = None
    interactive: bool = False  # by hand: the program gets our stdin, stdout, stderr
    inputs: list[str] = field(default_factory=list)  # host files read, for the depfile

    def note(self, line: str) -> None:
        print(line, file=self.log, flush=True)

    def streams(self) -> tuple[int | None, int, int]:
        if self.interactive:
            return (0, 1, 2)
        self.log.flush()
        return (None, self.log.fileno(), self.log.fileno())


def run_program(job: Job, box: Sandbox, argv: list[str], env: dict[str, str], cwd: str,
                chrooted: bool) -> pidns.Outcome:
    """Run ARGV in a new PID namespace, inside the sandbox's root if CHROOTED."""
    launch = pidns.Launch(argv, env, cwd, chroot=box.path if chrooted else None,
                          root_fd=box.root.fd if box.settings.mount_proc else None,
                          streams=job.streams())
    return pidns.run(launch)


def require_success(job: Job, what: str, outcome: pidns.Outcome) -> None:
    """Raise the step's error when the program failed."""
    if outcome.ok:
        return
    message = f"{job.label}: {what} {outcome.describe()}"
    tail = log_tail(job.log_path)
    if tail:
        message += "\n" + "\n".join(f"  | {line}" for line in tail)
    hint = f"the whole output is in {job.log_path}" if job.log_path else None
    raise HelperError(message, hint=hint)


def summary(what: str, outcome: pidns.Outcome) -> str:
    text = f"{what}: done in {outcome.seconds:.1f}s"
    if outcome.leftovers:
        text += f", stopped {outcome.leftovers} process(es) it left running"
    return text


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
