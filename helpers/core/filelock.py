"""Advisory locks on lock files (flock): the build directory's, a layer's,
the chunk cache's, one per download URL, one per cached run image.

A lock file is created if missing and never removed: removing it would let
a second process lock a new file of the same name while the first still
holds the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator


def lock_fd(path: str, kind: int, wait: bool = True) -> int:
    """An fd of PATH holding a flock of KIND (fcntl.LOCK_SH or LOCK_EX);
    WAIT False: BlockingIOError at once when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, kind if wait else kind | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def holding(path: str, kind: int, wait: bool = True) -> Iterator[int]:
    """PATH locked (see lock_fd) for the block; yields the fd."""
    fd = lock_fd(path, kind, wait)
    try:
        yield fd
    finally:
        os.close(fd)
