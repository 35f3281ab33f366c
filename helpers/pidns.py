"""Run a program as the only tenant of a new PID namespace.

The namespace's init (PID 1) is ours, `pidns_init`: it mounts the step's
/proc, starts the program, reaps whatever gets orphaned, and when the
program ends kills everything still running (the daemons a package script
started) before it exits.  The kernel then guarantees the namespace is
empty.  If this helper dies, however it dies, init gets SIGKILL
(PR_SET_PDEATHSIG, plus a lifeline pipe checked at start to close the race)
and the kernel kills the whole namespace with it.

This helper stays in its own PID namespace: the new one is created for the
next child only, then our children's namespace is set back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from acigen.helpers.linux import CLONE_NEWPID, setns, unshare
from acigen.helpers.uninterrupted import uninterrupted


@dataclass(frozen=True)
class Launch:
    """What to run, where, with which streams."""

    argv: list[str]
    env: dict[str, str]
    cwd: str  # inside the chroot when there is one
    chroot: str | None = None
    root_fd: int | None = None  # set: init mounts a fresh proc at /proc of this root
    streams: tuple[int | None, int, int] = (None, 2, 2)  # stdin (None: /dev/null), out, err


@dataclass(frozen=True)
class Outcome:
    wait_status: int | None  # None when the program did not start
    error: str | None = None
    leftovers: int = 0  # processes still running when the program ended, then killed
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.wait_status == 0

    def describe(self) -> str:
        if self.error is not None:
            return f"could not run: {self.error}"
        status = self.wait_status or 0
        if os.WIFSIGNALED(status):
            return f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exited with status {os.waitstatus_to_exitcode(status)}"


def run(launch: Launch) -> Outcome:
    """Run LAUNCH in a new PID namespace; returns when it and all it started are gone."""
    start = time.monotonic()
    fds: list[int] = []  # ours to close, whatever happens
    init: subprocess.Popen[bytes] | None = None
    try:
        spec_r, spec_w = _pipe(fds)
        status_r, status_w = _pipe(fds)
        life_r, _life_w = _pipe(fds)  # we hold the write end for as long as we live
        with uninterrupted():  # a signal here would lose track of init, or of our namespace
            init = _spawn_init(launch, spec_r, [spec_r, status_w, life_r])
        _send_spec(spec_w, launch, status_w, life_r)
        _close(fds, spec_w)  # init reads its orders up to end of file
        with _terminal_signals_go_to_the_program(launch):
            init.wait()
        _close(fds, status_w)  # init is gone: the report ends here
        report = _read_report(status_r)
    finally:
        with uninterrupted():
            if init is not None and init.returncode is None:
                init.kill()  # SIGKILL to init: the kernel kills the whole namespace
                init.wait()
            while fds:
                _close(fds, fds[-1])
    return _outcome(report, init.returncode, time.monotonic() - start)


@contextlib.contextmanager
def _terminal_signals_go_to_the_program(launch: Launch) -> Iterator[None]:
    """By hand, on a terminal, Ctrl-C and Ctrl-\\ are for the program (an
    interactive shell, say), as with system(3); we wait for it to end."""
    if launch.streams[0] is None or not os.isatty(launch.streams[0]) \
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


def _pipe(fds: list[int]) -> tuple[int, int]:
    r, w = os.pipe2(os.O_CLOEXEC)
    fds.extend((r, w))
    return r, w


def _close(fds: list[int], fd: int) -> None:
    fds.remove(fd)
    os.close(fd)


def _spawn_init(launch: Launch, spec_fd: int, fds: list[int]) -> subprocess.Popen[bytes]:
    stdin, stdout, stderr = launch.streams
    ours = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        unshare(CLONE_NEWPID)  # affects our next child only
        try:
            return subprocess.Popen(
                [sys.executable, "-I", "-m", "acigen.helpers.pidns_init", str(spec_fd)],
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=stdout, stderr=stderr, cwd="/", env=_init_env(),
                pass_fds=[*fds, *([launch.root_fd] if launch.root_fd is not None else [])])
        finally:
            setns(ours, CLONE_NEWPID)  # our later children: in our own namespace again
    finally:
        os.close(ours)


def _init_env() -> dict[str, str]:
    """Enough for our own interpreter to start; the program gets Launch.env."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:  # a helper run from a source tree
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _send_spec(spec_w: int, launch: Launch, status_fd: int, lifeline_fd: int) -> None:
    spec = {"argv": launch.argv, "env": launch.env, "cwd": launch.cwd,
            "chroot": launch.chroot, "root_fd": launch.root_fd,
            "status_fd": status_fd, "lifeline_fd": lifeline_fd}
    data = json.dumps(spec).encode()
    try:
        while data:
            data = data[os.write(spec_w, data):]
    except BrokenPipeError:
        pass  # init died at once; its report is missing and _outcome says so


def _read_report(status_r: int) -> dict[str, object]:
    chunks = []
    while chunk := os.read(status_r, 65536):
        chunks.append(chunk)
    try:
        report = json.loads(b"".join(chunks)) if chunks else {}
    except ValueError:
        report = {}
    return report if isinstance(report, dict) else {}


def _outcome(report: dict[str, object], init_status: int | None, seconds: float) -> Outcome:
    status = report.get("wait_status")
    error = report.get("error")
    if not isinstance(status, int) and not isinstance(error, str):
        error = f"the step's init ended early (exit status {init_status}); see the log"
    leftovers = report.get("leftovers", 0)
    return Outcome(status if isinstance(status, int) else None,
                   error if isinstance(error, str) else None,
                   leftovers if isinstance(leftovers, int) else 0, seconds)
