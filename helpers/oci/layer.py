"""OCI layer tars: one build step's changes, as OCI image layers say them.

Three sources, one output format (image-spec layer.md):

- `write_upper(tree)`: an overlayfs upper dir (a layer's `tree/` in overlay
  mode).  A deleted path is a character device 0/0 there and becomes an
  empty regular file `.wh.NAME`; a directory made opaque (xattr
  trusted.overlay.opaque=y: deleted and recreated) is followed at once by
  `DIR/.wh..wh..opq`, before its own entries.
- `write_diff(upper, lower)`: copy mode, where each layer's tree is a full
  snapshot: what differs between a tree and the one below it, with a
  `.wh.NAME` for each path that disappeared.
- `write_full(root)`: everything under a root (the squashed image).

Entries are written through tarstream's TreeWriter (sorted, numeric owners,
mtimes clamped, xattrs, hard links), so the same tree gives the same bytes.
The root directory itself is not an entry: the runtime makes it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from acigen.errors import HelperError
from acigen.helpers.core.userns import in_user_namespace
from acigen.helpers.tar.writer import (
    REGULAR,
    Entry,
    TreeWriter,
    read_xattrs,
    walk,
    write_end,
    write_entry,
)

WHITEOUT = b".wh."
OPAQUE = b".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
USERNS_OPAQUE_XATTR = "user.overlay.opaque"
COMPARE_BLOCK = 1 << 20


@dataclass
class LayerCounts:
    entries: int = 0
    whiteouts: int = 0
    opaque: int = 0


class LayerWriter:
    """Writes one layer's entries into SINK (see tarstream.Sink)."""

    def __init__(self, sink: object, epoch: int) -> None:
        self.sink = sink
        self.epoch = epoch
        self.tree = TreeWriter(sink, epoch)  # type: ignore[arg-type]
        self.counts = LayerCounts()

    def entry(self, path: bytes, name: bytes, st: os.stat_result) -> None:
        if os.path.basename(name).startswith(WHITEOUT):
            raise HelperError(f"/{os.fsdecode(name)}: a name starting with .wh. cannot be "
                              "stored in an OCI layer (it means 'deleted' there)")
        self.tree.write_path(path, name, st)
        self.counts.entries += 1

    def marker(self, name: bytes, st: os.stat_result | None = None) -> None:
        """An empty regular file: a whiteout or the opaque marker."""
        mtime = self.epoch if st is None else min(int(st.st_mtime), self.epoch)
        write_entry(self.sink, Entry(name, REGULAR, 0o644, 0, 0, mtime))  # type: ignore[arg-type]
        if os.path.basename(name) == OPAQUE:
            self.counts.opaque += 1
        else:
            self.counts.whiteouts += 1

    def end(self) -> LayerCounts:
        write_end(self.sink)  # type: ignore[arg-type]
        return self.counts


def _join(parent: bytes, name: bytes) -> bytes:
    return parent + b"/" + name if parent else name


def _whiteout_name(rel: bytes) -> bytes:
    parent, name = os.path.split(rel)
    return _join(parent, WHITEOUT + name)


def is_overlay_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: bytes) -> bool:
    # in a user namespace (rootless builds) overlayfs marks it in user.overlay.*
    name = USERNS_OPAQUE_XATTR if in_user_namespace() else OPAQUE_XATTR
    try:
        return os.getxattr(path, name, follow_symlinks=False) == b"y"
    except OSError:
        return False


def is_whiteout_file(rel: bytes, st: os.stat_result) -> bool:
    """fuse-overlayfs' whiteout where it cannot make a device: empty `.wh.NAME`."""
    return os.path.basename(rel).startswith(WHITEOUT) and stat.S_ISREG(st.st_mode) \
        and st.st_size == 0


def write_upper(layer: LayerWriter, tree: str, whiteout_files: bool = False) -> LayerCounts:
    """An overlayfs upper dir as an OCI layer; WHITEOUT_FILES: one
    fuse-overlayfs wrote (layers/fusenorm.py), whose whiteouts may be files."""
    top = os.fsencode(tree)
    for rel, st in walk(top):
        path = top + b"/" + rel
        if is_overlay_whiteout(st):
            layer.marker(_whiteout_name(rel), st)
            continue
        if whiteout_files and is_whiteout_file(rel, st):
            layer.marker(rel, st)
            continue
        layer.entry(path, rel, st)
        if stat.S_ISDIR(st.st_mode) and is_opaque(path):
            layer.marker(_join(rel, OPAQUE), st)
    return layer.end()


def write_full(layer: LayerWriter, root: str) -> LayerCounts:
    """Everything under ROOT (a merged view or a full snapshot)."""
    top = os.fsencode(root)
    for rel, st in walk(top):
        layer.entry(top + b"/" + rel, rel, st)
    return layer.end()


# -- copy mode: the difference of two full trees ------------------------------------

def _children(path: bytes) -> dict[bytes, os.stat_result]:
    with os.scandir(path) as it:
        return {entry.name: entry.stat(follow_symlinks=False) for entry in it}


def _same_bytes(a: bytes, b: bytes) -> bool:
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            block_a, block_b = fa.read(COMPARE_BLOCK), fb.read(COMPARE_BLOCK)
            if block_a != block_b:
                return False
            if not block_a:
                return True


class _Differ:
    def __init__(self, layer: LayerWriter, upper: bytes, lower: bytes) -> None:
        self.layer, self.upper, self.lower = layer, upper, lower

    def clamp(self, st: os.stat_result) -> int:
        return min(st.st_mtime_ns // 1_000_000_000, self.layer.epoch)

    def same(self, rel: bytes, new: os.stat_result, old: os.stat_result) -> bool:
        """Whether REL is unchanged: type, metadata, xattrs and content.

        Regular files with equal metadata are compared byte for byte: a
        step may rewrite a file keeping its size and mtime (dpkg does)."""
        if (new.st_mode, new.st_uid, new.st_gid) != (old.st_mode, old.st_uid, old.st_gid):
            return False
        if self.clamp(new) != self.clamp(old):
            return False
        a, b = self.upper + b"/" + rel, self.lower + b"/" + rel
        if read_xattrs(a) != read_xattrs(b):
            return False
        if stat.S_ISREG(new.st_mode):
            return new.st_size == old.st_size and _same_bytes(a, b)
        if stat.S_ISLNK(new.st_mode):
            return os.readlink(a) == os.readlink(b)
        if stat.S_ISCHR(new.st_mode) or stat.S_ISBLK(new.st_mode):
            return new.st_rdev == old.st_rdev
        return True

    def directory(self, rel: bytes, lower_exists: bool) -> None:
        upper_dir = self.upper + b"/" + rel if rel else self.upper
        new = _children(upper_dir)
        old: dict[bytes, os.stat_result] = {}
        if lower_exists:
            old = _children(self.lower + b"/" + rel if rel else self.lower)
        for name in sorted(new.keys() | old.keys()):
            child = _join(rel, name)
            if name not in new:
                self.layer.marker(_whiteout_name(child))
                continue
            st, before = new[name], old.get(name)
            if before is None or not self.same(child, st, before):
                self.layer.entry(upper_dir + b"/" + name, child, st)
            if stat.S_ISDIR(st.st_mode):
                self.directory(child, before is not None and stat.S_ISDIR(before.st_mode))


def write_diff(layer: LayerWriter, upper: str, lower: str) -> LayerCounts:
    """What changed from the full tree LOWER to the full tree UPPER."""
    _Differ(layer, os.fsencode(upper), os.fsencode(lower)).directory(b"", True)
    return layer.end()


def layer_sources(trees: list[str], mode: str) -> Iterator[tuple[str, str | None]]:
    """(tree, tree below it or None) for each layer, base first; trees are
    given nearest first, as image files list layers."""
    base_first = list(reversed(trees))
    for index, tree in enumerate(base_first):
        below = base_first[index - 1] if index and mode == "copy" else None
        yield tree, below
