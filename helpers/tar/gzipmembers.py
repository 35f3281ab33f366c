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
exactly to the end of the file, a member longer than MEMBER_SIZE bytes can
compress to, one that does not inflate to exactly MEMBER_SIZE bytes (the
last: at most that), or past its own end, CRC and length, is a corrupt file
(one error line); so a hostile file costs at most three members' memory and
no more members than honest ones would.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

MEMBER_SIZE = 16 << 20  # uncompressed bytes in every member but the last
FIELD_ID = b"ac"
_FIXED = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\x00\x03"  # FEXTRA, mtime 0, unix
_EXTRA = struct.pack("<H", 12) + FIELD_ID + struct.pack("<H", 8)
HEADER_SIZE = len(_FIXED) + len(_EXTRA) + 8
WORKERS = 2


class CorruptMembers(Exception):
    """The members' lengths or contents do not add up."""


def member(data: bytes | memoryview, level: int = 6) -> bytes:
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
            self._emit(memoryview(self.pending)[:MEMBER_SIZE])
            del self.pending[:MEMBER_SIZE]
        return len(data)

    def close(self) -> None:
        """Write the rest (an empty file is one empty member)."""
        if self.pending or not self.members:
            self._emit(bytes(self.pending))
            self.pending.clear()

    def _emit(self, data: bytes | memoryview) -> None:
        self.out.write(member(data, self.level))
        self.members += 1


def has_lengths(fd: int) -> bool:
    """Whether the gzip file FD starts with a member that says its length."""
    return os.pread(fd, HEADER_SIZE, 0).startswith(_FIXED + _EXTRA)


def spans(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of each member of the gzip file FD (SIZE bytes), read
    as they are needed (a hostile file may claim a million members)."""
    at = 0
    while at < size:
        head = os.pread(fd, HEADER_SIZE, at)
        if len(head) < HEADER_SIZE or not head.startswith(_FIXED + _EXTRA):
            raise CorruptMembers(f"no gzip member with its length at byte {at}")
        length = struct.unpack("<Q", head[-8:])[0]
        if not HEADER_SIZE + 10 <= length <= _longest() or at + length > size:
            raise CorruptMembers(f"the gzip member at byte {at} says it is {length} bytes")
        yield at, length
        at += length


def _longest() -> int:
    """The longest member MEMBER_SIZE bytes can make (zlib's deflateBound)."""
    n = MEMBER_SIZE
    return HEADER_SIZE + n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 8


def _inflate(fd: int, offset: int, length: int, last: bool) -> bytes:
    """The member at OFFSET: MEMBER_SIZE bytes, or up to that for the LAST."""
    blob = os.pread(fd, length, offset)
    inflate = zlib.decompressobj(-15)
    data = inflate.decompress(memoryview(blob)[HEADER_SIZE:], MEMBER_SIZE + 1)
    if len(data) > MEMBER_SIZE:
        raise CorruptMembers(f"the gzip member at byte {offset} inflates past "
                             f"{MEMBER_SIZE} bytes")
    if not last and len(data) != MEMBER_SIZE:
        raise CorruptMembers(f"the gzip member at byte {offset} does not hold "
                             f"{MEMBER_SIZE} bytes, as every member but the last does")
    if not inflate.eof or inflate.unconsumed_tail or len(blob) != length or \
            inflate.unused_data != struct.pack("<II", zlib.crc32(data),
                                               len(data) & 0xFFFFFFFF):
        raise CorruptMembers(f"the gzip member at byte {offset} does not end where "
                             "it says, or fails its check")
    return data


def inflate_into(fd: int, size: int, sink: BinaryIO) -> None:
    """Inflate the members of FD (SIZE bytes) on WORKERS threads; write them to
    SINK in order (at most WORKERS + 1 inflated members held at once)."""
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="gunzip") as pool:
        waiting: deque[Future[bytes]] = deque()
        try:
            for offset, length in spans(fd, size):
                last = offset + length == size
                waiting.append(pool.submit(_inflate, fd, offset, length, last))
                if len(waiting) > WORKERS:
                    sink.write(waiting.popleft().result())
            while waiting:
                sink.write(waiting.popleft().result())
        finally:
            for future in waiting:
                future.cancel()
