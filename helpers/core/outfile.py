"""Temporaries beside an output (an image), and the ones a killed writer left.

An image is written to `.NAME.tmp-XXXX` beside NAME and renamed into place,
so nobody ever sees half an image.  The writer holds a lock on its
temporary while it writes; one whose lock nobody holds was left by a writer
that was killed (SIGKILL runs no cleanup), and the next pack of NAME, `acigen
gc` and `acigen clean` remove it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO


def _prefix(path: str) -> str:
    return f".{os.path.basename(path)}.tmp-"


def _abandoned(path: str) -> bool:
    """Whether PATH is a regular file no living writer holds."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return os.path.isfile(path)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def stale_temps(path: str) -> list[str]:
    """The temporaries of PATH that killed writers left behind."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    candidates = [os.path.join(directory, n) for n in names if n.startswith(_prefix(path))]
    return [c for c in candidates if _abandoned(c)]


def remove_stale_temps(path: str) -> int:
    removed = 0
    for stale in stale_temps(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
            removed += 1
    return removed


def _locked_temp(path: str) -> tuple[int, str]:
    """A new temporary beside PATH, locked.  A sweep may remove it between
    its creation and the lock: then it has no name left, and we make another."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=_prefix(path), dir=os.path.dirname(path))
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)


@contextlib.contextmanager
def temporary_beside(path: str) -> Iterator[tuple[BinaryIO, str]]:
    """An unbuffered, locked file beside PATH; removed if the block fails
    (renaming it into place is the caller's).  Stale ones go first."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = _locked_temp(path)
    try:
        with os.fdopen(fd, "w+b", buffering=0) as out:
            yield out, tmp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
