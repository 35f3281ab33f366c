"""One process's tar of a fixed tree, for the determinism test of test_tarstream.py.

`python -m tests.pack.tarstream_child DIR ORDER SHIFT` builds the tree in DIR,
creating entries in ORDER ("forward" or "reverse", so the directory's on-disk
order differs), with mtimes SHIFT seconds after now (a different wall clock),
then writes to stdout LONE's header (a pax one) and the tree's tar at EPOCH.  Modes
are set by chmod, so the caller's umask may differ without changing the tree.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from acigen.helpers.tar.writer import REGULAR, Entry, TreeWriter, header, write_end

EPOCH = 1_700_000_000
OLD = 1_000_000_000  # an mtime before EPOCH, kept as it is
FILES = {"b": b"bee", "a/x": b"x" * 700, "a/y": b"", "c": b"c", "zz/" + "n" * 120: b"long"}
XATTRS = {"user.one": b"1", "user.two": b"2", "user.three": b"3", "user.four": b"4"}
# an entry that needs a pax header: a long name and xattrs
LONE = Entry(b"rootfs/" + b"x" * 300, REGULAR, 0o644, 5, 6, 7, 8,
             xattrs=tuple((k.encode(), v) for k, v in sorted(XATTRS.items())))


class Output:
    def __init__(self) -> None:
        self.data = bytearray()

    def mark(self, key: bytes) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.data += data


def make_tree(top: Path, order: str, shift: int) -> None:
    names = sorted(FILES, reverse=order == "reverse")
    for name in names:
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILES[name])
        path.chmod(0o640 if name < "b" else 0o755)
    os.link(top / "c", top / "a" / "hard")  # the first name in tar order is the target
    (top / "s").symlink_to("a/x")
    attrs = sorted(XATTRS, reverse=order == "reverse")
    for key in attrs:
        os.setxattr(top / "b", key, XATTRS[key])
    now = time.time() + shift
    for path in [*top.rglob("*"), top]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o750)
        os.utime(path, (now, now), follow_symlinks=False)
    os.utime(top / "c", (OLD, OLD))


def main() -> None:
    top, order, shift = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    make_tree(top, order, shift)
    out = Output()
    out.write(header(LONE))
    TreeWriter(out, EPOCH).write_tree(os.fsencode(top), b"rootfs")
    write_end(out)
    sys.stdout.buffer.write(out.data)


if __name__ == "__main__":
    main()
