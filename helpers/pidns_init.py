"""PID 1 of a chroot step's PID namespace (started by pidns.run).

Reads its orders as JSON from the fd named on the command line, then:
dies with its parent (PR_SET_PDEATHSIG), takes fresh UTS and IPC
namespaces (a package cannot rename the host or leave SysV IPC objects
behind), mounts /proc for this namespace when asked, runs the program
(chrooted when asked), reaps orphans until the program ends, kills
whatever is left, and writes a JSON report to the status fd:
`{"wait_status": N, "leftovers": K}` or `{"error": "...", "leftovers": K}`.

Its imports are kept to the standard library's lightest and `linux` /
`mountat`: this process starts at every chroot step.

The program gets a clean start: default signal dispositions, umask 022
(file modes in the image must not depend on the builder's shell), only
stdin, stdout and stderr open.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys

from acigen.helpers.linux import (
    CLONE_NEWIPC,
    CLONE_NEWUTS,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    die_with_parent,
    unshare,
)
from acigen.helpers.mountat import make_readonly, mount_at

TYPE_CHECKING = False  # typing costs a third of this start-up; annotations only
if TYPE_CHECKING:
    from typing import Any

RESET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE,
                 signal.SIGXFSZ)


def main() -> int:
    with open(int(sys.argv[1]), encoding="utf-8") as src:
        try:
            spec: dict[str, Any] = json.load(src)
        except ValueError:
            return 2  # the helper died before it finished sending our orders
    _die_with_parent(spec["lifeline_fd"])
    status_fd = spec["status_fd"]
    os.set_inheritable(status_fd, False)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # our parent decides when we stop
    try:
        report = _run(spec)
    finally:
        leftovers = _kill_the_rest()
    report["leftovers"] = leftovers
    if leftovers:
        print(f"acigen: stopped {leftovers} process(es) the command left running",
              file=sys.stderr, flush=True)
    os.write(status_fd, json.dumps(report).encode())
    return 0


def _die_with_parent(lifeline_fd: int) -> None:
    die_with_parent(signal.SIGKILL)
    os.set_blocking(lifeline_fd, False)
    try:
        if os.read(lifeline_fd, 1) == b"":  # no writer: the parent died before prctl
            os._exit(1)
    except BlockingIOError:
        pass  # the parent is alive, holding the write end
    os.close(lifeline_fd)


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        unshare(CLONE_NEWUTS | CLONE_NEWIPC)
        if spec["root_fd"] is not None:
            mount_proc(spec["root_fd"])
            os.close(spec["root_fd"])
    except OSError as exc:
        return {"error": f"cannot set up the step's namespace: {exc}"}
    return _run_program(spec)


def mount_proc(rootfd: int) -> None:
    """A proc of this namespace at /proc of the root; /proc/sys and
    /proc/sysrq-trigger read-only, so a package cannot retune or reboot the host."""
    proc = mount_at(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    try:
        make_readonly(proc, "sys")
        with contextlib.suppress(FileNotFoundError):  # kernels without magic sysrq
            make_readonly(proc, "sysrq-trigger", directory=False)
    finally:
        os.close(proc)


def _run_program(spec: dict[str, Any]) -> dict[str, Any]:
    err_r, err_w = os.pipe2(os.O_CLOEXEC)  # carries an exec failure; closes on success
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        _exec_program(spec, err_w)
    os.close(err_w)
    with open(err_r, "rb") as src:
        failure = src.read()
    status = _reap_until(pid)
    if failure:
        return {"error": failure.decode("utf-8", "replace")}
    return {"wait_status": status}


def _exec_program(spec: dict[str, Any], err_w: int) -> None:
    argv = spec["argv"]
    try:
        for sig in RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.umask(0o022)
        if spec["chroot"]:
            os.chroot(spec["chroot"])
        os.chdir(spec["cwd"])
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        os.write(err_w, _exec_failure(exc, argv[0], spec["cwd"]).encode())
    except BaseException as exc:
        os.write(err_w, f"{argv[0]}: {exc}".encode())
    finally:
        os._exit(127)


def _exec_failure(exc: OSError, program: str, cwd: str) -> str:
    if exc.filename == cwd:
        return f"working directory {cwd}: {exc.strerror}"
    if exc.errno == errno.ENOENT and "/" in program and os.path.lexists(program):
        return (f"{program}: cannot be executed: its interpreter (the #! line, or the ELF "
                "loader) is missing in the image")
    return f"{program}: {exc.strerror}"


def _reap_until(pid: int) -> int:
    """Reap children (orphans are ours too) until PID ends; its wait status."""
    while True:
        got, status = os.waitpid(-1, 0)
        if got == pid:
            return status


def _kill_the_rest() -> int:
    """Kill every other process in the namespace and reap them; how many."""
    if os.getpid() != 1:  # kill(-1) outside a PID namespace would hit the host
        return 0
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        return 0
    count = 0
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return count
        count += 1


if __name__ == "__main__":
    sys.exit(main())
