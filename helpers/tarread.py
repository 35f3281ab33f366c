"""Read a tar stream member by member, fast, from a file descriptor.

Our own parser rather than `tarfile`: it costs a few microseconds per member,
copies file data with large reads (or in the kernel, with copy_file_range or
splice) and refuses what it does not understand instead of guessing.

Understood: ustar, GNU tar (long names `L`/`K`, base-256 numbers, dumpdirs)
and pax (`x`/`g` records: long names, sub-second times, big ids and sizes,
`SCHILY.xattr.*` as GNU tar and star write them, `LIBARCHIVE.xattr.*` as
bsdtar writes them).  Refused: sparse files, multi-volume parts and any
member type not listed in `_KINDS`.  (The tar *writer* is tarstream.py.)
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterator

from acigen.helpers.common import HelperError

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_MAX_META = 1 << 20  # cap on pax/long-name data we hold in memory
_BUFFER_SIZE = 2 * _MAX_META + BLOCK  # room for a read of _MAX_META after any leftover
_BULK_MIN = 256 * 1024  # below this, copying through our buffer is cheaper
_XATTR_KEYS = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
_SPECIAL_KEYS = (*_XATTR_KEYS, "GNU.sparse.")  # pax keys that need a closer look

# a header's fields, unpacked in one call
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
(_NAME, _MODE, _UID, _GID, _SIZE, _MTIME, _CHKSUM, _FLAG, _LINKNAME, _MAGIC, _VERSION, _UNAME,
 _GNAME, _DEVMAJOR, _DEVMINOR, _PREFIX) = range(16)

_KINDS = {
    b"0": "file", b"\0": "file", b"7": "file",
    b"1": "hardlink", b"2": "symlink", b"3": "char", b"4": "block",
    b"5": "dir", b"6": "fifo", b"D": "dir",
}
_NOT_SUPPORTED = {
    b"S": "GNU sparse files are not supported",
    b"M": "multi-volume archives are not supported",
    b"N": "old GNU long-name members are not supported",
}


class Member:
    """One entry of the archive, its data not yet read."""

    __slots__ = ("atime_ns", "devmajor", "devminor", "gid", "kind", "linkname", "mode",
                 "mtime_ns", "name", "size", "uid", "xattrs")

    def __init__(self, name: str, kind: str, size: int, mode: int, uid: int, gid: int,
                 mtime_ns: int, linkname: str, devmajor: int, devminor: int) -> None:
        self.name = name
        self.kind = kind
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtime_ns = mtime_ns
        self.atime_ns = mtime_ns
        self.linkname = linkname
        self.devmajor = devmajor
        self.devminor = devminor
        self.xattrs: dict[str, bytes] = {}


Bulk = Callable[[int, int, int], int]


class Stream:
    """Buffered reads from FD into one reused buffer (no allocation, no page
    faults per read), with bulk copies that bypass it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.offset = 0  # bytes consumed so far, for error messages
        self._view = memoryview(bytearray(_BUFFER_SIZE))
        self._pos = self._end = 0  # the unread bytes are _view[_pos:_end]
        self._bulk = _pick_bulk(fd)

    def _fill(self) -> bool:
        if self._pos:  # move what is left to the front, then read after it
            left = self._end - self._pos
            self._view[:left] = self._view[self._pos:self._end]
            self._pos, self._end = 0, left
        got = os.readv(self.fd, [self._view[self._end:]])
        self._end += got
        return got > 0

    def _truncated(self) -> HelperError:
        return HelperError(f"the archive is truncated (at byte {self.offset})")

    def read(self, n: int) -> bytes | None:
        """Exactly N bytes; None at the end of the stream."""
        while self._end - self._pos < n:
            if not self._fill():
                if self._pos == self._end:
                    return None
                raise self._truncated()
        data = self._view[self._pos:self._pos + n].tobytes()
        self._pos += n
        self.offset += n
        return data

    def copy_to(self, out: int, n: int) -> None:
        """Write the next N bytes of the stream to OUT."""
        while n:
            avail = self._end - self._pos
            if not avail:
                if n >= _BULK_MIN and self._bulk is not None:
                    n -= self._copy_bulk(out, n)
                    continue
                if not self._fill():
                    raise self._truncated()
                avail = self._end - self._pos
            take = min(avail, n)
            _write_all(out, self._view[self._pos:self._pos + take])
            self._pos += take
            self.offset += take
            n -= take

    def _copy_bulk(self, out: int, n: int) -> int:
        assert self._bulk is not None
        try:
            done = self._bulk(self.fd, out, n)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP,
                                 errno.EBADF):
                raise
            self._bulk = None  # this pair of files cannot: use our buffer from now on
            return 0
        if done == 0:
            raise self._truncated()
        self.offset += done
        return done

    def skip(self, n: int) -> None:
        while n:
            if self._end == self._pos and not self._fill():
                raise self._truncated()
            take = min(self._end - self._pos, n)
            self._pos += take
            self.offset += take
            n -= take

    def drain(self) -> None:
        """Read to the end (trailing padding), so that a decompressor finishes."""
        self._pos = self._end = 0
        while os.readv(self.fd, [self._view]):
            pass


def _pick_bulk(fd: int) -> Bulk | None:
    """In-kernel copies: copy_file_range from a file, splice from a pipe."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return lambda src, dst, n: os.copy_file_range(src, dst, n)
    if stat.S_ISFIFO(mode):
        return lambda src, dst, n: os.splice(src, dst, n)
    return None


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


# -- headers ----------------------------------------------------------------

def _cstr(field: bytes) -> bytes:
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def _number(field: bytes) -> int:
    """An octal field, or GNU's base-256 for values that do not fit."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            return int.from_bytes(field, "big", signed=True)
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    digits = field.strip(b" \0")
    return int(digits, 8) if digits else 0


def _checksum_ok(block: bytes, field: bytes) -> bool:
    try:
        stored = int(field.strip(b" \0") or b"0", 8)
    except ValueError:
        return False
    # The sum of the block's bytes, from adler32 (in C, unlike sum()): its low
    # half is 1 + sum mod 65521, and a block's sum is below 2 * 65521.
    low = (zlib.adler32(block) & 0xFFFF) - 1
    if stored - 8 * 32 + sum(field) in (low, low + 65521):
        return True
    # some old writers summed signed chars
    signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 8 * 32
    return stored == signed


def _pax_records(data: bytes) -> dict[str, bytes]:
    """`LEN key=value\\n` records; values stay bytes (xattrs are binary)."""
    records: dict[str, bytes] = {}
    pos, end = 0, len(data)
    while pos < end and data[pos]:  # some writers pad with NULs
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        stop = pos + length
        equals = data.index(b"=", space)
        if length <= 0 or equals >= stop or data[stop - 1] != 0x0A:
            raise ValueError("malformed pax record")
        records[data[space + 1:equals].decode("utf-8", "surrogateescape")] = \
            data[equals + 1:stop - 1]
        pos = stop
    return records


def _pax_time_ns(value: bytes) -> int:
    """A pax time ("1700000000.123456789", maybe negative) in nanoseconds."""
    negative = value.startswith(b"-")
    whole, _, frac = value.lstrip(b"-").partition(b".")
    if not (whole + frac).isdigit():
        raise ValueError(f"bad time {value!r}")
    ns = int(whole or b"0") * 1_000_000_000 + int(frac[:9].ljust(9, b"0"))
    return -ns if negative else ns


def _merge(globals_: dict[str, bytes], local: dict[str, bytes]) -> dict[str, bytes]:
    """Local records over global ones; an empty value unsets a keyword
    (except for xattrs, whose value may be empty)."""
    merged = {**globals_, **local}
    return {key: value for key, value in merged.items()
            if value or key.startswith(_XATTR_KEYS)}


class TarReader:
    """Iterate over the members of a tar stream; copy each one's data before
    asking for the next (unread data is skipped)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._left = 0  # unread data of the current member
        self._pad = 0
        self._globals: dict[str, bytes] = {}
        self.last_name = ""

    def __iter__(self) -> Iterator[Member]:
        while True:
            self.stream.skip(self._left + self._pad)
            self._left = self._pad = 0
            member = self._next()
            if member is None:
                return
            self.last_name = member.name
            yield member

    def copy_data(self, out: int) -> None:
        self.stream.copy_to(out, self._left)
        self._left = 0

    def _read_meta(self, size: int, what: str) -> bytes:
        if size > _MAX_META:
            raise self._error(f"its {what} is {size} bytes long, more than we accept")
        data = self.stream.read(size) if size else b""
        if data is None:
            raise self.stream._truncated()
        self.stream.skip(-size % BLOCK)
        return data

    def _error(self, what: str, name: str | None = None) -> HelperError:
        if name is not None:
            return HelperError(f"member {name!r}: {what}")
        where = f"the entry after {self.last_name!r}" if self.last_name else "the first entry"
        return HelperError(f"{where}: {what}")

    def _next(self) -> Member | None:
        local: dict[str, bytes] = {}
        long_name = long_link = None
        while True:
            start = self.stream.offset
            block = self.stream.read(BLOCK)
            if block is None or block == _ZERO_BLOCK:
                return None  # end of archive (a missing end marker is tolerated)
            fields = _HEADER.unpack(block)
            if not _checksum_ok(block, fields[_CHKSUM]):
                after = f" (after member {self.last_name!r})" if self.last_name else ""
                raise HelperError("not a tar archive, or corrupt: bad header checksum at "
                                  f"byte {start}{after}")
            flag = fields[_FLAG]
            try:
                size = _number(fields[_SIZE])
            except ValueError:
                raise self._error(f"bad size field {fields[_SIZE]!r}") from None
            if flag in (b"x", b"g"):
                records = self._parse_pax(self._read_meta(size, "pax header"))
                (local if flag == b"x" else self._globals).update(records)
            elif flag == b"L":
                long_name = _cstr(self._read_meta(size, "long name"))
            elif flag == b"K":
                long_link = _cstr(self._read_meta(size, "long link name"))
            elif flag == b"V":  # a volume label: nothing to extract
                self.stream.skip(size + (-size % BLOCK))
            else:
                pax = _merge(self._globals, local) if self._globals or not all(
                    local.values()) else local
                if "size" in pax:
                    size = self._pax_size(pax["size"])
                return self._member(fields, size, pax, long_name, long_link)

    def _pax_size(self, value: bytes) -> int:
        if not value.isdigit():
            raise self._error(f"bad pax size {value!r}")
        return int(value)

    def _parse_pax(self, data: bytes) -> dict[str, bytes]:
        try:
            return _pax_records(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._error(f"malformed pax header ({exc})") from None

    def _member(self, fields: tuple[bytes, ...], size: int, pax: dict[str, bytes],
                long_name: bytes | None, long_link: bytes | None) -> Member:
        flag = fields[_FLAG]
        raw_name = long_name if long_name is not None else _cstr(fields[_NAME])
        if long_name is None and fields[_MAGIC] == b"ustar\0" and fields[_PREFIX][0]:
            raw_name = _cstr(fields[_PREFIX]) + b"/" + raw_name
        name = os.fsdecode(pax.get("path", raw_name))
        kind = _KINDS.get(flag)
        if kind is None:
            why = _NOT_SUPPORTED.get(flag, f"unknown member type {flag.decode('latin-1')!r}")
            raise self._error(why, name)
        special = [key for key in pax if key.startswith(_SPECIAL_KEYS)] if pax else ()
        if any(key.startswith("GNU.sparse.") for key in special):
            raise self._error(_NOT_SUPPORTED[b"S"], name)
        if kind == "file" and flag != b"7" and raw_name.endswith(b"/"):
            kind = "dir"  # pre-POSIX tars mark directories by a trailing slash
        link = pax.get("linkpath", long_link if long_link is not None
                       else _cstr(fields[_LINKNAME]))
        try:
            member = _make_member(fields, name, kind, size, pax, os.fsdecode(link))
            for key in special:
                _add_xattr(member, key, pax[key])
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._error(f"bad header field ({exc})", name) from None
        # only regular files (and GNU dumpdirs) are followed by data, as in tarfile
        data = member.size if kind == "file" or flag == b"D" else 0
        self._left, self._pad = data, -data % BLOCK
        return member


def _make_member(fields: tuple[bytes, ...], name: str, kind: str, size: int,
                 pax: dict[str, bytes], link: str) -> Member:
    devices = kind in ("char", "block")
    if not pax:
        return Member(name, kind, size, _number(fields[_MODE]) & 0o7777,
                      _number(fields[_UID]), _number(fields[_GID]),
                      _number(fields[_MTIME]) * 1_000_000_000, link,
                      _number(fields[_DEVMAJOR]) if devices else 0,
                      _number(fields[_DEVMINOR]) if devices else 0)
    get = pax.get
    mtime = get("mtime")
    member = Member(
        name, kind, size, _number(fields[_MODE]) & 0o7777,
        int(uid) if (uid := get("uid")) else _number(fields[_UID]),
        int(gid) if (gid := get("gid")) else _number(fields[_GID]),
        _pax_time_ns(mtime) if mtime else _number(fields[_MTIME]) * 1_000_000_000, link,
        int(get("SCHILY.devmajor") or _number(fields[_DEVMAJOR])) if devices else 0,
        int(get("SCHILY.devminor") or _number(fields[_DEVMINOR])) if devices else 0)
    if "atime" in pax:
        member.atime_ns = _pax_time_ns(pax["atime"])
    return member


def _add_xattr(member: Member, key: str, value: bytes) -> None:
    if key.startswith("SCHILY.xattr."):
        member.xattrs[key[13:]] = value
    elif key.startswith("LIBARCHIVE.xattr."):
        member.xattrs.update([_libarchive_xattr(key[17:], value)])


def _libarchive_xattr(name: str, value: bytes) -> tuple[str, bytes]:
    """bsdtar's form: the name URL-encoded, the value base64."""
    import base64
    import urllib.parse
    return urllib.parse.unquote(name), base64.b64decode(value + b"=" * (-len(value) % 4))
