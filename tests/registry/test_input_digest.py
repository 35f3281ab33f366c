"""The layer cache keys host inputs by content, hashing each once per process:
a digest is reused only for the same file left as it was."""

from __future__ import annotations

import os
from pathlib import Path

from acigen.helpers.registry.layercache import _file_digest


def test_an_input_changed_in_place_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "base.tar"
    path.write_bytes(b"one")
    first = _file_digest(str(path))
    assert _file_digest(str(path)) == first
    path.write_bytes(b"two")  # same size, same inode
    os.utime(path, ns=(1, 1))  # and an mtime nothing else has
    assert _file_digest(str(path)) not in (None, first)


def test_a_replaced_or_missing_input_is_not_taken_for_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "base.tar"
    path.write_bytes(b"one")
    first = _file_digest(str(path))
    other = tmp_path / "other"
    other.write_bytes(b"two")
    os.utime(other, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns))
    os.replace(other, path)  # a new inode with the old mtime and size
    assert _file_digest(str(path)) not in (None, first)
    path.unlink()
    assert _file_digest(str(path)) is None
    path.mkdir()
    assert _file_digest(str(path)) is None
