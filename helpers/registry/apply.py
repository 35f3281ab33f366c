"""OCI layers applied to a root, in order, through the confined extractor.

Each layer is a tar (plain, gzip or zstd: told by its bytes) unpacked by
helpers/untar.py's Extractor, with the OCI image spec's two special names:

- `DIR/.wh.NAME` (a whiteout): NAME, as the layers below left it, is removed;
- `DIR/.wh..wh..opq` (an opaque directory): what the layers below put in DIR
  is removed; what this layer puts there stays.

Whiteouts apply only to what lower layers made (the spec's rule), so an
entry this same layer wrote before or after its whiteout stays.  A whiteout
is resolved inside the root like every other member: a name with `..`, or a
whiteout of `.` or `..`, stops the build with one line; a path through a
symlink is followed inside the root, never out of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from acigen.errors import HelperError
from acigen.helpers.rootfs.root import Root
from acigen.helpers.tar.decompress import tar_stream
from acigen.helpers.tar.reader import Member, Stream, TarReader
from acigen.helpers.tar.untar import Extractor, Stats, member_parts

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class LayerApplier:
    """One layer's members onto ROOT, whiteouts resolved."""

    def __init__(self, root: Root, devices: str) -> None:
        self.root = root
        self.extractor = Extractor(root, devices)
        self.written: set[str] = set()  # this layer's own entries
        self.whiteouts = 0

    def apply(self, member: Member, reader: TarReader) -> None:
        parts = member_parts(member.name, member.name)
        base = parts[-1] if parts else ""
        if base.startswith(WHITEOUT):
            self._whiteout(member, parts)
            return
        self.extractor.apply(member, reader)
        self.written.add("/".join(parts))

    def _whiteout(self, member: Member, parts: list[str]) -> None:
        if member.kind not in ("file", "hardlink"):
            raise HelperError(f"member {member.name!r}: a whiteout must be a plain file")
        directory = parts[:-1]
        if parts[-1] == OPAQUE:
            self._clear_directory("/".join(directory), member.name)
            return
        target = parts[-1][len(WHITEOUT):]
        if target in ("", ".", "..") or target.startswith(WHITEOUT):
            raise HelperError(f"member {member.name!r}: a whiteout of {target!r} names no "
                              "entry")
        key = "/".join([*directory, target])
        if key not in self.written:
            self._remove(key, member.name)
        self.whiteouts += 1

    def _clear_directory(self, key: str, member: str) -> None:
        """Remove what lower layers put in directory KEY (not this layer's)."""
        try:
            fd = self.root.open(key, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise HelperError(f"member {member!r}: {exc.strerror}") from None
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        for name in names:
            child = f"{key}/{name}" if key else name
            if not any(w == child or w.startswith(child + "/") for w in self.written):
                self._remove(child, member)
        self.whiteouts += 1

    def _remove(self, key: str, member: str) -> None:
        try:
            if self.root.lstat(key) is None:
                return
            self.root.remove(key)
        except (NotADirectoryError, ValueError):
            return
        except OSError as exc:
            raise HelperError(f"member {member!r}: cannot remove {key!r}: "
                              f"{exc.strerror}") from None
        # the extractor's cached directory fds below KEY are stale now
        self.extractor.close()

    def finish(self) -> None:
        self.extractor.finish()

    def close(self) -> None:
        self.extractor.close()


def apply_layer(root: Root, path: str, devices: str, max_size: int | None,
                what: str) -> tuple[Stats, int]:
    """Unpack the layer at PATH onto ROOT: (the extractor's stats, whiteouts)."""
    with tar_stream(path) as (fd, compression):
        stream = Stream(fd)
        reader = TarReader(stream, max_size)
        applier = LayerApplier(root, devices)
        try:
            for member in reader:
                applier.apply(member, reader)
            applier.finish()
            if compression != "tar":
                stream.drain()
        except HelperError as exc:
            raise HelperError(f"{what}: {exc}", exc.hint) from None
        finally:
            applier.close()
    return applier.extractor.stats, applier.whiteouts


def apply_layers(root_dir: str, paths: Iterable[str], devices: str,
                 max_size: int | None, name: str) -> tuple[int, int, int]:
    """Every layer in PATHS, base first: (entries, bytes, whiteouts applied)."""
    umask = os.umask(0)  # entries get exactly the layers' modes
    entries = size = whiteouts = 0
    try:
        with Root(root_dir) as root:
            for number, path in enumerate(paths, 1):
                stats, removed = apply_layer(root, path, devices, max_size,
                                             f"{name} layer {number}")
                entries += stats.members
                size += stats.bytes
                whiteouts += removed
                root.forget("")
    finally:
        os.umask(umask)
    return entries, size, whiteouts

