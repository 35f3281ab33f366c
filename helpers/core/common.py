"""What every helper shares: error reporting, atomic writes, signals.

A helper prints one summary line on success and one precise error line on
failure (plus an optional `hint:` line).  Exit codes: 0 success, 1 failure,
3 internal error (traceback only with ACIGEN_DEBUG=1), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from acigen.errors import report_bug, report_error

# Every helper runs with this umask, whatever the user's: directories and
# files the helpers (and the steps they run) create get the same modes, so
# the image, and its ID, never depend on who ran the build (umask 077 made
# the root 0700: another image, and one a non-root app cannot enter).
IMAGE_UMASK = 0o022


class HelperError(Exception):
    """A failure the user can act on; reported in one line."""

    def __init__(self, message: str, hint: str | None = None,
                 detail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.hint = hint
        self.detail = tuple(detail)  # lines shown under the error (a log's tail)


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived; unwind through every `finally`."""


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


def run_main(prog: str, body: Callable[[list[str]], int], argv: Sequence[str] | None) -> int:
    """Run a helper's body and map its outcome to one line and an exit code."""
    os.umask(IMAGE_UMASK)
    install_signal_handlers()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return body(args)
    except HelperError as exc:
        return report_error(prog, str(exc), exc.hint, exc.detail)
    except (KeyboardInterrupt, Interrupted):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            return report_bug(prog, exc, bool(os.environ.get("ACIGEN_DEBUG")),
                              "rerun with ACIGEN_DEBUG=1 for a traceback")
        full = space_error(exc, None)
        return report_error(prog, str(full), full.hint)
    except Exception as exc:  # an acigen bug: say so, traceback on request
        return report_bug(prog, exc, bool(os.environ.get("ACIGEN_DEBUG")),
                          "rerun with ACIGEN_DEBUG=1 for a traceback")


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def space_error(exc: OSError, path: str | None) -> HelperError:
    """A full disk or quota is the user's to fix, not an acigen bug."""
    where = exc.filename or path
    reason = os.strerror(exc.errno or errno.ENOSPC)
    return HelperError(f"{where}: {reason}" if where else reason,
                       hint="free some space and build again")


@contextlib.contextmanager
def writing(path: str) -> Iterator[None]:
    """Name PATH in the one-line error when the disk fills while writing it."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise space_error(exc, path) from None
        raise


def warn(prog: str, message: str) -> None:
    """A warning line on stderr (nothing for an empty MESSAGE)."""
    if message:
        print(f"{prog}: warning: {message}", file=sys.stderr)


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write PATH so that readers see the old file or the whole new one."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with writing(path), os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_if_changed(path: str, data: bytes) -> bool:
    """Write PATH atomically, but only if its content changes: an unchanged
    file keeps its mtime (what ninja's restat and a no-op rebuild rely on)."""
    try:
        with open(path, "rb") as old:
            if old.read() == data:
                return False
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    return True


def remove_file(path: str) -> None:
    _unlink_quietly(path)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# Reading a file an image holds: O_NONBLOCK so that a FIFO (or a device)
# where a file is expected does not block the open forever; then
# regular_only() refuses anything but a regular file.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def regular_only(fd: int, name: str) -> int:
    """FD (opened with READ_FLAGS) if it is a regular file; else it is
    closed and an OSError raised (its strerror says why)."""
    import errno
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


def json_bytes(data: Any) -> bytes:
    """DATA as the small, diffable JSON files helpers keep (refs, locks, metadata)."""
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as src:
            return json.load(src)
    except FileNotFoundError:
        raise HelperError(f"{path}: no such file",
                          hint="regenerate the build files by running acigen again") from None


def write_depfile(path: str, target: str, inputs: Sequence[str]) -> None:
    """A Makefile-syntax depfile, as ninja reads it (first target = TARGET).

    Each input also gets an empty rule of its own (gcc's -MP), so that make,
    which includes the file in a Makefile build, reruns the step rather than
    stopping when an input disappears; ninja accepts and ignores them.
    """
    def esc(name: str) -> str:
        return name.replace("\\", "\\\\").replace(" ", "\\ ").replace("$", "$$") \
                   .replace("#", "\\#")
    names = sorted(set(inputs))
    lines = [f"{esc(target)}: \\"] + [f"  {esc(name)} \\" for name in names]
    phony = "".join(f"{esc(name)}:\n\n" for name in names)
    atomic_write(path, ("\n".join(lines) + "\n\n" + phony).encode())
