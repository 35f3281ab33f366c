"""A deterministic tar writer: a directory tree as POSIX (ustar + pax) entries.

Same tree, same epoch -> same bytes.  Members come in the order GNU
`tar --sort=name` gives (depth first, names sorted bytewise within each
directory); owners are numeric (uname/gname empty); mtimes are clamped to
SOURCE_DATE_EPOCH; hard links, devices, fifos, symlinks and xattrs are kept;
sockets are skipped.  A pax extended header is written only where ustar
cannot say it (long names, big ids/sizes/times, xattrs), and it is itself
deterministic: a fixed name and records in a fixed order.

The bytes go to a `Sink`: `mark(key)` says "a new entry starts here, KEY is
its header" (where a chunked compressor may cut), `write(data)` appends.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from acigen.errors import HelperError

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)
READ_SIZE = 1 << 20

REGULAR, HARDLINK, SYMLINK, CHARDEV, BLOCKDEV, DIRECTORY, FIFO, PAX = (
    b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"x")

PAX_NAME = b"././@PaxHeader"  # fixed, so pax headers never vary between builds
# xattrs that describe the host or overlayfs' bookkeeping, never the image
# user.overlay.*: overlayfs' bookkeeping in a user namespace (rootless builds)
SKIPPED_XATTRS = ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.",
                  "security.fuseoverlayfs.", "security.selinux")


class Sink(Protocol):
    def mark(self, key: bytes) -> None: ...
    def write(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Entry:
    """One tar member.  NAME is stored as is (directories end in '/')."""

    name: bytes
    kind: bytes
    mode: int  # permission bits, setuid/setgid/sticky included
    uid: int
    gid: int
    mtime: int
    size: int = 0
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[bytes, bytes], ...] = ()  # sorted by name


# -- encoding ---------------------------------------------------------------

_LIMITS = {8: 8 ** 7, 12: 8 ** 11}  # field width -> first value that does not fit


def _fits(value: int, width: int) -> bool:
    return 0 <= value < _LIMITS[width]


def _octal(value: int, width: int) -> bytes:
    """VALUE as WIDTH-1 octal digits and a NUL; 0 if it does not fit (a pax
    record then carries it)."""
    return b"%0*o\0" % (width - 1, value if _fits(value, width) else 0)


def _split_name(name: bytes) -> tuple[bytes, bytes] | None:
    """(name, prefix) fields for NAME, or None when ustar cannot hold it."""
    if len(name) <= 100:
        return name, b""
    # prefix = the part before some '/', at most 155 bytes; the rest at most 100
    cut = name.find(b"/", max(len(name) - 101, 1))
    if cut == -1 or cut > 155 or cut == len(name) - 1:
        return None
    return name[cut + 1:], name[:cut]


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" %s=%s\n" % (key, value)
    length = len(body) + len(str(len(body)))
    if len(str(length)) != len(str(len(body))):  # the length counts its own digits
        length += 1
    return b"%d%s" % (length, body)


# name mode uid gid size mtime checksum type linkname magic+version
# (uname gname: empty) devmajor devminor prefix (padding)
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8s64x8s8s155s12x")


def _ustar(name: bytes, prefix: bytes, entry: Entry, kind: bytes, size: int) -> bytes:
    """One ustar header block; a name or link too long is cut (a pax record
    then carries it)."""
    block = _USTAR.pack(
        name, _octal(entry.mode, 8), _octal(entry.uid, 8), _octal(entry.gid, 8),
        _octal(size, 12), _octal(entry.mtime, 12), b" " * 8, kind, entry.linkname,
        b"ustar\x0000", _octal(entry.devmajor, 8), _octal(entry.devminor, 8), prefix)
    # the sum of all bytes, the checksum field counting as spaces; zero
    # bytes add nothing, and dropping them first makes the sum 3x faster
    checksum = b"%06o\0 " % sum(block.translate(None, b"\0"))
    return block[:148] + checksum + block[156:]


def _pax_records(entry: Entry, split: tuple[bytes, bytes] | None) -> list[bytes]:
    records: list[tuple[bytes, bytes]] = []
    if split is None:
        records.append((b"path", entry.name))
    if len(entry.linkname) > 100:
        records.append((b"linkpath", entry.linkname))
    for key, value, width in ((b"uid", entry.uid, 8), (b"gid", entry.gid, 8),
                              (b"size", entry.size, 12), (b"mtime", entry.mtime, 12)):
        if not _fits(value, width):
            records.append((key, b"%d" % value))
    records.sort()
    # names go as raw bytes, as GNU tar writes them: no `hdrcharset=BINARY`,
    # which GNU tar warns about and every reader does without
    records += [(b"SCHILY.xattr." + key, value) for key, value in entry.xattrs]
    return [_pax_record(key, value) for key, value in records]


def header(entry: Entry) -> bytes:
    """The header block(s) of ENTRY: a pax header first when one is needed."""
    if not (_fits(entry.devmajor, 8) and _fits(entry.devminor, 8)):
        raise HelperError(f"{entry.name!r}: device number too big for a tar header")
    split = _split_name(entry.name)
    records = _pax_records(entry, split)
    name, prefix = split or (entry.name, b"")
    ustar = _ustar(name, prefix, entry, entry.kind, entry.size)
    if not records:
        return ustar
    data = b"".join(records)
    pax_entry = Entry(PAX_NAME, PAX, 0o644, 0, 0, max(entry.mtime, 0))
    pax = _ustar(PAX_NAME, b"", pax_entry, PAX, len(data))
    return pax + data + padding(len(data)) + ustar


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def write_entry(sink: Sink, entry: Entry, data: bytes = b"") -> None:
    """Write an entry whose data is in memory (the manifest, for instance)."""
    head = header(entry)
    sink.mark(head)
    sink.write(head)
    if data:
        sink.write(data)
        sink.write(padding(len(data)))


def write_end(sink: Sink) -> None:
    sink.mark(END_OF_ARCHIVE)
    sink.write(END_OF_ARCHIVE)


# -- a directory tree -------------------------------------------------------

def _sorted_children(root: bytes, rel: bytes) -> list[tuple[bytes, os.stat_result]]:
    with os.scandir(root + b"/" + rel if rel else root) as it:
        children = [(entry.name, entry.stat(follow_symlinks=False)) for entry in it]
    children.sort(key=lambda child: child[0])
    return [(rel + b"/" + name if rel else name, st) for name, st in children]


def walk(root: bytes) -> Iterator[tuple[bytes, os.stat_result]]:
    """(relative path, lstat) of everything under ROOT, in GNU tar
    --sort=name order.  Iterative: a deep tree must not hit the recursion limit."""
    stack = [iter(_sorted_children(root, b""))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        yield item
        if stat.S_ISDIR(item[1].st_mode):
            stack.append(iter(_sorted_children(root, item[0])))


def read_xattrs(path: bytes) -> tuple[tuple[bytes, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:  # a filesystem without xattr support has none to keep
        return ()
    pairs = []
    for name in names:
        if name.startswith(SKIPPED_XATTRS):
            continue
        pairs.append((os.fsencode(name), os.getxattr(path, name, follow_symlinks=False)))
    return tuple(sorted(pairs))


_KINDS = {stat.S_IFREG: REGULAR, stat.S_IFDIR: DIRECTORY, stat.S_IFLNK: SYMLINK,
          stat.S_IFCHR: CHARDEV, stat.S_IFBLK: BLOCKDEV, stat.S_IFIFO: FIFO}


class TreeWriter:
    """Writes the entries of one directory tree under a name prefix."""

    def __init__(self, sink: Sink, epoch: int) -> None:
        self.sink = sink
        self.epoch = epoch
        self.entries = 0
        self._first_link: dict[tuple[int, int], bytes] = {}

    def write_tree(self, root: bytes, prefix: bytes) -> None:
        """ROOT itself as PREFIX/, then everything under it.  ROOT may be a
        symlink to the directory, as with `tar -C ROOT .`; nothing below is followed."""
        st = os.stat(root)
        if not stat.S_ISDIR(st.st_mode):
            raise HelperError(f"{os.fsdecode(root)}: not a directory")
        self.write_path(root, prefix, st)
        for rel, child in walk(root):
            self.write_path(root + b"/" + rel, prefix + b"/" + rel, child)

    def write_path(self, path: bytes, name: bytes, st: os.stat_result) -> None:
        entry = self.entry_for(path, name, st)
        if entry is None:
            return
        head = header(entry)
        self.sink.mark(head)
        self.sink.write(head)
        self.entries += 1
        if entry.kind == REGULAR and entry.size:
            self._write_data(path, entry.size)

    def entry_for(self, path: bytes, name: bytes, st: os.stat_result) -> Entry | None:
        kind = _KINDS.get(stat.S_IFMT(st.st_mode))
        if kind is None:  # sockets (and anything unknown) have no place in an image
            return None
        mtime = min(st.st_mtime_ns // 1_000_000_000, self.epoch)
        common = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, mtime)
        if kind == DIRECTORY:
            return Entry(name + b"/", kind, *common, xattrs=read_xattrs(path))
        if st.st_nlink > 1:
            first = self._first_link.setdefault((st.st_dev, st.st_ino), name)
            if first != name:
                return Entry(name, HARDLINK, *common, linkname=first)
        if kind == SYMLINK:
            return Entry(name, kind, *common, linkname=os.readlink(path),
                         xattrs=read_xattrs(path))
        size = st.st_size if kind == REGULAR else 0
        major = os.major(st.st_rdev) if kind in (CHARDEV, BLOCKDEV) else 0
        minor = os.minor(st.st_rdev) if kind in (CHARDEV, BLOCKDEV) else 0
        return Entry(name, kind, *common, size=size, devmajor=major, devminor=minor,
                     xattrs=read_xattrs(path))

    def _write_data(self, path: bytes, size: int) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        isolate = getattr(self.sink, "isolate", None)  # chunks.ChunkedCompressor's
        if isolate is not None:
            isolate(size)
        try:
            left = size
            while left:
                data = os.read(fd, min(left, READ_SIZE))
                if not data:
                    raise HelperError(f"{os.fsdecode(path)}: file shrank while being packed",
                                      hint="nothing may change the tree during pack")
                self.sink.write(data)
                left -= len(data)
        finally:
            os.close(fd)
        self.sink.write(padding(size))
