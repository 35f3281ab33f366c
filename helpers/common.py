"""What every helper shares: error reporting, atomic writes, signals.

A helper prints one summary line on success and one precise error line on
failure (plus an optional `hint:` line).  Exit codes: 0 success, 1 failure,
3 internal error (traceback only with ACIGEN_DEBUG=1), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

from acigen.errors import report_bug, report_error


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
    """Stop this helper when the ninja that started it dies.

    Ninja reads a job's output through a pipe.  If ninja is killed with
    SIGKILL it cannot signal its jobs, but the pipe's read end closes: poll
    reports POLLERR on our write end and we interrupt ourselves, so no
    orphaned step keeps running (and mounting, and writing) behind the user.
    """
    try:
        if not _is_pipe(1):
            return
    except OSError:
        return
    poller = select.poll()
    poller.register(1, 0)  # POLLERR and POLLHUP are always reported

    def wait() -> None:
        while True:
            for _fd, events in poller.poll():
                if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

    threading.Thread(target=wait, name="orphan-watch", daemon=True).start()


def _is_pipe(fd: int) -> bool:
    import stat
    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def run_main(prog: str, body: Callable[[list[str]], int], argv: Sequence[str] | None) -> int:
    """Run a helper's body and map its outcome to one line and an exit code."""
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
    except Exception as exc:  # an acigen bug: say so, traceback on request
        return report_bug(prog, exc, bool(os.environ.get("ACIGEN_DEBUG")),
                          "rerun with ACIGEN_DEBUG=1 for a traceback")


def atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write PATH so that readers see the old file or the whole new one."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
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
