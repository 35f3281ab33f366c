"""The errors acigen and its helpers report, and their exit codes; a leaf
module that imports nothing of acigen."""

from __future__ import annotations

import enum
import errno
import os
import sys
from collections.abc import Sequence


class ExitCode(enum.IntEnum):
    """What acigen, `acigen run` and every helper exit with (README: Exit codes)."""
    OK = 0
    FAILED = 1        # bad input, a failed step: one error line said why
    USAGE = 2         # options that do not fit together (argparse's own code too)
    BUG = 3           # an internal error: a traceback on request
    RUN_FAILED = 125  # `acigen run` itself failed (the app's status otherwise)
    INTERRUPTED = 130


class AcigenError(Exception):
    """A problem the user can fix: one line, optionally a hint, and DETAIL
    (lines shown under it: a failed program's last output)."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None,
                 detail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.hint = hint
        self.detail = tuple(detail)


def printable(text: str) -> str:
    """TEXT with control characters escaped: an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ManifestError(AcigenError):
    """Bad input, located by file and JSON pointer (or line and column)."""

    def __init__(self, file: str, where: str, message: str, hint: str | None = None) -> None:
        where, message = printable(where), printable(message)
        super().__init__(f"{file}:{where}: {message}" if where else f"{file}: {message}", hint)
        self.file = file
        self.where = where


class UsageError(AcigenError):
    """Options that do not fit together."""

    exit_code = ExitCode.USAGE


class HelperError(AcigenError):
    """A build helper's failure the user can act on (a step, a download)."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived; unwind through every `finally`."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def space_error(exc: OSError, path: str | None) -> HelperError:
    """A full disk or quota is the user's to fix, not an acigen bug."""
    # a copy's error names its source first (shutil sets filename, then
    # filename2): the file written, on the full disk, is the second
    where = exc.filename2 or exc.filename or path
    reason = os.strerror(exc.errno or errno.ENOSPC)
    return HelperError(f"{where}: {reason}" if where else reason,
                       hint="free some space and build again")


def report(prog: str, exc: AcigenError) -> int:
    """Print EXC as PROG's one-line error; its exit code."""
    report_error(prog, str(exc), exc.hint, exc.detail)
    return exc.exit_code


def report_error(prog: str, message: str, hint: str | None = None,
                 detail: Sequence[str] = ()) -> int:
    """Print PROG's one-line error (and hint) to stderr; the exit code, 1.
    Control characters (a newline in a file name) are escaped: one line.
    DETAIL (a failed program's last lines of output) follows, quoted."""
    print(f"{prog}: error: {printable(message)}", file=sys.stderr)
    for line in detail:
        print(f"  | {printable(line)}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return ExitCode.FAILED


def report_bug(prog: str, exc: BaseException, show_traceback: bool, how: str) -> int:
    """An acigen bug: say so in one line (HOW names the way to a traceback); 3."""
    if show_traceback:
        import traceback  # only for a bug: not at every start

        traceback.print_exc()
    print(f"{prog}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"hint: {how}, and report it", file=sys.stderr)
    return ExitCode.BUG


def interrupted(exc: BaseException) -> bool:
    """EXC is, or was caused by, a Ctrl-C.  (Python 3.11 wraps one that lands
    while a class is being made in a RuntimeError from __set_name__.)"""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain a few links long at most
        if seen is None:
            return False
        if isinstance(seen, (KeyboardInterrupt, Interrupted)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def handle_exit(prog: str, exc: BaseException, how: str, debug: bool) -> int:
    """The one way acigen, `acigen run` and every helper end on an exception:
    one line, and the exit code it calls for.  HOW names the way to a
    traceback; SystemExit (argparse's usage errors: 2) passes through."""
    if isinstance(exc, AcigenError):
        return report(prog, exc)
    if interrupted(exc):  # a Ctrl-C or SIGTERM, or one Python wrapped in another error
        print(f"{prog}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return ExitCode.FAILED
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return report(prog, space_error(exc, None))
    if isinstance(exc, Exception):  # an acigen bug: say so, traceback on request
        return report_bug(prog, exc, debug, how)
    raise exc
