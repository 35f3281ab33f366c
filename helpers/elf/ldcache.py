"""Parse glibc's ld.so.cache (the file the loader consults at run time).

Modern caches hold only the "new" format: a 48-byte header (magic glibc-ld.so.cache1.1,
entry count, string-table size, an endianness byte, extension offset) followed by 24-byte
entries (flags, key, value, unused OS version, hwcap word).  String offsets count from the
start of that header.  A cache written by an old ldconfig starts with an old-format block
(magic ld.so-1.7.0) and carries the new block after it; the old block is skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
HWCAP_EXTENSION = 1 << 62  # the entry lives under glibc-hwcaps/<name>/


@dataclass(frozen=True)
class CacheEntry:
    key: str
    value: str
    flags: int
    hwcap: int

    @property
    def variant(self) -> bool:
        """A CPU-specific entry (glibc-hwcaps or legacy hwcap subdirectory)."""
        return self.hwcap != 0


class CacheError(ValueError):
    pass


@dataclass(frozen=True)
class LdCache:
    entries: tuple[CacheEntry, ...]

    def lookup(self, key: str, flags: frozenset[int] | None) -> list[CacheEntry]:
        """Entries for KEY whose ABI flags the loader accepts (None: any), in file order."""
        found = self._index().get(key, [])
        return [e for e in found if flags is None or e.flags in flags]

    def _index(self) -> dict[str, list[CacheEntry]]:
        index = self.__dict__.get("_by_key")
        if index is None:
            index = {}
            for entry in self.entries:
                index.setdefault(entry.key, []).append(entry)
            object.__setattr__(self, "_by_key", index)
        return index


def parse(data: bytes) -> LdCache:
    start = _new_block(data)
    if start < 0:
        return LdCache(())  # an old-format-only cache: glibc >= 2.32 ignores it too
    if len(data) < start + 48:
        raise CacheError("truncated header")
    flags_byte = data[start + 28]
    end = ">" if flags_byte == 3 else "<"  # 2 = little endian; 0 = unknown (old writers)
    nlibs, _ = struct.unpack_from(end + "II", data, start + 20)
    if len(data) < start + 48 + 24 * nlibs:
        raise CacheError("truncated entry table")
    entries = []
    for index in range(nlibs):
        flags, key, value, _, hwcap = struct.unpack_from(end + "iIIIQ", data,
                                                         start + 48 + 24 * index)
        entries.append(CacheEntry(_string(data, start + key), _string(data, start + value),
                                  flags, hwcap))
    return LdCache(tuple(entries))


def _new_block(data: bytes) -> int:
    if data.startswith(NEW_MAGIC):
        return 0
    if not data.startswith(OLD_MAGIC):
        raise CacheError("not an ld.so.cache file")
    # old header: 11-byte magic padded to 12, a 32-bit count, 12-byte entries; the new
    # block follows, aligned to 8 bytes.  Fall back to a search if a writer padded oddly.
    (nlibs,) = struct.unpack_from("<I", data, 12)
    aligned = (16 + 12 * nlibs + 7) & ~7
    if data.startswith(NEW_MAGIC, aligned):
        return aligned
    return data.find(NEW_MAGIC)


def _string(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if end < 0 or offset >= len(data):
        raise CacheError(f"string offset {offset} outside the file")
    return data[offset:end].decode("utf-8", "surrogateescape")
