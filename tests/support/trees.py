"""Trees deeper than Python's recursion limit, for the tests of iterative walks.

pytest's own cleanup of its temporary directories uses shutil.rmtree, which
recurses: a test that makes one must remove it (treeremove.remove_tree), or
every later pytest session on the machine dies at its cleanup."""

from __future__ import annotations

import os
from pathlib import Path


def deep_tree(top: Path, depth: int) -> None:
    """TOP/d/d/.../d/f, DEPTH directories down (made by fd: no long paths)."""
    top.mkdir(parents=True)
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
