"""gzip in independent members that say their own length: inflated on two cores.

One gzip stream inflates on one core only (a 161 MB layer of apt's lists takes
0.74 s here), and that is what applying a pulled layer waits for.  A gzip
file may hold members one after another (RFC 1952; every gzip reader reads
them all), each inflating on its own; and a member's header may carry
extra fields.  The layers acigen pushes to its cache repository
(helpers/registry/layercache.py) are members of MEMBER_SIZE uncompressed
bytes each, each header carrying one extra field, `ac`, with the member's
whole compressed length: a reader hops from header to header without
inflating, then inflates the members on several threads (zlib lets go of
the GIL) and writes them out in order.

Nothing else is changed: without the field (any other gzip file) the file
is read as one stream.  A field that does not lead from member to member
exactly to the end of the file, or a member that does not inflate to
exactly its own end, CRC and length, is a corrupt file (one error line).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

MEMBER_SIZE = 16 << 20      # uncompressed bytes per member, as written
MEMBER_MAX = 64 << 20       # what one member may inflate to, as read
FIELD_ID = b"ac"
_FIXED = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\x00\x03"  # FEXTRA, mtime 0, unix
_EXTRA = struct.pack("<H", 12) + FIELD_ID + struct.pack("<H", 8)
HEADER_SIZE = len(_FIXED) + len(_EXTRA) + 8
WORKERS = 2


class CorruptMembers(Exception):
    """The members' lengths or contents do not add up."""


def member(data: bytes, level: int = 6) -> bytes:
    """DATA as one gzip member whose header holds the member's length."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    total = HEADER_SIZE + len(body) + 8
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return _FIXED + _EXTRA + struct.pack("<Q", total) + body + trailer


class MemberWriter:
    """A writable file: what is written goes to OUT as members of MEMBER_SIZE."""

    def __init__(self, out: BinaryIO, level: int = 6) -> None:
        self.out = out
        self.level = level
        self.pending = bytearray()
        self.members = 0

    def write(self, data: bytes | memoryview) -> int:
        self.pending += data
        while len(self.pending) >= MEMBER_SIZE:
            self._emit(bytes(self.pending[:MEMBER_SIZE]))
            del self.pending[:MEMBER_SIZE]
        return len(data)

    def close(self) -> None:
        """Write the rest (an empty file is one empty member)."""
        if self.pending or not self.members:
            self._emit(bytes(self.pending))
            self.pending.clear()

    def _emit(self, data: bytes) -> None:
        self.out.write(member(data, self.level))
        self.members += 1


def spans(fd: int, size: int) -> list[tuple[int, int]] | None:
    """(offset, length) of every member of the gzip file FD (SIZE bytes), or None
    when its first header has no length field (read it as one stream)."""
    out: list[tuple[int, int]] = []
    at = 0
    while at < size:
        head = os.pread(fd, HEADER_SIZE, at)
        if not head.startswith(_FIXED + _EXTRA) or len(head) < HEADER_SIZE:
            if not out:
                return None
            raise CorruptMembers(f"no gzip member with its length at byte {at}")
        length = struct.unpack("<Q", head[-8:])[0]
        if length < HEADER_SIZE + 10 or at + length > size:
            raise CorruptMembers(f"the gzip member at byte {at} says it is {length} bytes")
        out.append((at, length))
        at += length
    return out


def _inflate(fd: int, offset: int, length: int) -> bytes:
    blob = os.pread(fd, length, offset)
    inflate = zlib.decompressobj(-15)
    data = inflate.decompress(memoryview(blob)[HEADER_SIZE:], MEMBER_MAX + 1)
    if len(data) > MEMBER_MAX:
        raise CorruptMembers(f"the gzip member at byte {offset} inflates beyond "
                             f"{MEMBER_MAX >> 20} MiB")
    if not inflate.eof or inflate.unconsumed_tail or len(blob) != length or \
            inflate.unused_data != struct.pack("<II", zlib.crc32(data),
                                               len(data) & 0xFFFFFFFF):
        raise CorruptMembers(f"the gzip member at byte {offset} does not end where "
                             "it says, or fails its check")
    return data


def inflate_into(fd: int, members: list[tuple[int, int]], sink: BinaryIO) -> None:
    """Inflate MEMBERS of FD on WORKERS threads; write them to SINK in order
    (at most WORKERS + 1 inflated members held at once)."""
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="gunzip") as pool:
        waiting: deque[Future[bytes]] = deque()
        todo = iter(members)
        try:
            for offset, length in todo:
                waiting.append(pool.submit(_inflate, fd, offset, length))
                if len(waiting) > WORKERS:
                    sink.write(waiting.popleft().result())
            while waiting:
                sink.write(waiting.popleft().result())
        finally:
            for future in waiting:
                future.cancel()
