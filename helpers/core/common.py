"""What every helper's main shares: the umask, signals, the exit, reading
an image's files.

A helper prints one summary line on success and one precise error line on
failure (plus an optional `hint:` line); the exit codes are
acigen.errors.ExitCode (0 success, 1 failure, 3 internal error, traceback
only with ACIGEN_DEBUG=1, 130 interrupted).  Errors and the I/O helpers
share with the compiler live in acigen/errors.py and acigen/fileio.py.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import sys
from collections.abc import Callable, Sequence

from acigen.errors import Interrupted, handle_exit

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    pass

# Every helper runs with this umask, whatever the user's: directories and
# files the helpers (and the steps they run) create get the same modes, so
# the image, and its ID, never depend on who ran the build (umask 077 made
# the root 0700: another image, and one a non-root app cannot enter).
IMAGE_UMASK = 0o022


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so cleanup code runs."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)


def watch_for_orphaning() -> None:
    """Stop this helper when the ninja or make that started it dies.

    Ninja reads a job's output through a pipe.  If ninja is killed with
    SIGKILL it cannot signal its jobs, but the pipe's read end closes: poll
    reports POLLERR on our write end.  Make gives its jobs the terminal, so
    under make we watch the make process itself (the nearest ancestor named
    make).  Either way we interrupt ourselves, so no orphaned step keeps
    running (and mounting, and writing its stamp) behind the user.
    """
    poller = select.poll()
    piped = _stdout_is_pipe()
    if piped:
        poller.register(1, 0)  # POLLERR and POLLHUP are always reported
    tool = _make_process() if "MAKELEVEL" in os.environ else None
    if tool is None and not piped:
        return

    def wait() -> None:
        while True:
            hung_up = any(events & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
                          for _fd, events in poller.poll(WATCH_INTERVAL_MS))
            if hung_up or (tool is not None and _process_start(tool[0]) != tool[1]):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    import threading  # not at every regeneration: acigen imports this module too

    threading.Thread(target=wait, name="orphan-watch", daemon=True).start()


WATCH_INTERVAL_MS = 200


def _stdout_is_pipe() -> bool:
    try:
        return _is_pipe(1)
    except OSError:
        return False


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as src:
            return src.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return None


def _process_start(pid: int) -> str | None:
    """When PID started (ticks since boot): a pid reused later differs."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def _make_process() -> tuple[int, str] | None:
    """(pid, start) of the nearest ancestor that is make."""
    pid = os.getppid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as src:
                name = src.read().strip()
        except OSError:
            return None
        start = _process_start(pid)
        if name in ("make", "gmake") and start is not None:
            return pid, start
        fields = _stat_fields(pid)
        pid = int(fields[1]) if fields else 0
    return None


def _is_pipe(fd: int) -> bool:
    import stat
    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def run_main(prog: str, body: Callable[[list[str]], int], argv: Sequence[str] | None,
             user_namespace: bool = True) -> int:
    """Run a helper's body and map its outcome to one line and an exit code.

    Started by an ordinary user, a helper that works on image trees
    (USER_NAMESPACE) first enters a user namespace (core/userns.py), before
    any thread starts; fetch and sign, which only write the user's files, do not."""
    os.umask(IMAGE_UMASK)
    install_signal_handlers()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if user_namespace:
            from acigen.helpers.core import userns
            userns.enter()
        return body(args)
    except BaseException as exc:
        return handle_exit(prog, exc, "rerun with ACIGEN_DEBUG=1 for a traceback",
                           bool(os.environ.get("ACIGEN_DEBUG")))


def exit_now(code: int) -> None:
    """Exit with CODE, skipping the interpreter's finalization (freeing every
    module: ~5 ms, paid at every build step; bench/chroot_run.py).  Only for a
    helper's `__main__` after main() returned: by then every file it wrote is
    closed, every mount undone and every process it started waited for (its
    threads are daemons), so only the standard streams hold buffered output."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # ninja gone (a broken pipe)
            stream.flush()
    os._exit(code)


def warn(prog: str, message: str) -> None:
    """A warning line on stderr (nothing for an empty MESSAGE)."""
    if message:
        print(f"{prog}: warning: {message}", file=sys.stderr)


# Reading a file an image holds: O_NONBLOCK so that a FIFO (or a device)
# where a file is expected does not block the open forever; then
# regular_only() refuses anything but a regular file.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def regular_only(fd: int, name: str) -> int:
    """FD (opened with READ_FLAGS) if it is a regular file; else it is
    closed and an OSError raised (its strerror says why)."""
    import stat
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):  # as open() says it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        raise OSError(errno.EINVAL, "not a regular file", name)
    return fd


def open_regular(path: str) -> int:
    """An fd of the regular file at PATH (see READ_FLAGS)."""
    return regular_only(os.open(path, READ_FLAGS), path)
