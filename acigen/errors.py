"""The errors acigen reports; a leaf module that imports nothing of acigen."""

from __future__ import annotations

import sys
from collections.abc import Sequence


class AcigenError(Exception):
    """A problem the user can fix: one line, optionally a hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


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
    return 1


def report_bug(prog: str, exc: BaseException, show_traceback: bool, how: str) -> int:
    """An acigen bug: say so in one line (HOW names the way to a traceback); 3."""
    if show_traceback:
        import traceback  # only for a bug: not at every start

        traceback.print_exc()
    print(f"{prog}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"hint: {how}, and report it", file=sys.stderr)
    return 3
