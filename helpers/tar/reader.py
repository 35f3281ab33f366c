"""Read a tar stream member by member, fast, from a file descriptor.

Our own parser rather than `tarfile`: it costs a few microseconds per member,
copies file data with large reads (or in the kernel, with copy_file_range or
splice) and refuses what it does not understand instead of guessing.

Understood: ustar, GNU tar (long names `L`/`K`, base-256 numbers, dumpdirs)
and pax (`x`/`g` records: long names, sub-second times, big ids and sizes,
`SCHILY.xattr.*` as GNU tar and star write them, `LIBARCHIVE.xattr.*` as
bsdtar writes them).  Refused: sparse files, multi-volume parts and any
member type not listed in `_KINDS`.  (The tar *writer* is tar/writer.py.)

Hostile headers cost bounded work and end in one line naming the member:
every size, id, time and device number is checked against what the system
calls take (a negative size would seek backwards forever), pax records must
fit their header, names hold no NUL byte, the overlay filesystem's xattrs
(`trusted.overlay.*`) are refused, reading stops at the end-of-archive
marker and at most TRAILING_MAX bytes are read after it, and an optional
`max_size` bounds the whole uncompressed stream.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import zlib
from collections.abc import Callable, Iterator

from acigen.errors import HelperError

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_MAX_META = 1 << 20  # cap on pax/long-name data we hold in memory
_MAX_SIZE = 1 << 60  # a member size beyond any disk, still far inside an off_t
_MAX_ID = (1 << 32) - 2  # uid and gid: (uid_t)-1 means "unchanged" to chown
_MAX_DEVICE = (1 << 32) - 1  # makedev's major and minor are unsigned ints
_MAX_SECONDS = (1 << 63) // 1_000_000_000 - 1  # times: their ns fit an int64
TRAILING_MAX = 16 << 20  # bytes accepted after the end-of-archive marker
_BUFFER_SIZE = 2 * _MAX_META + BLOCK  # room for a read of _MAX_META after any leftover
_BULK_MIN = 256 * 1024  # below this, copying through our buffer is cheaper
_XATTR_KEYS = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
_SPECIAL_KEYS = (*_XATTR_KEYS, "GNU.sparse.")  # pax keys that need a closer look
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")

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

    def drain(self, limit: int = TRAILING_MAX) -> None:
        """Read to the end (the padding after the end marker), so that a
        decompressor finishes, but no more than LIMIT bytes: a small archive
        may decompress to a terabyte of padding."""
        left = limit + self._pos - self._end
        self._pos = self._end = 0
        while left >= 0:
            got = os.readv(self.fd, [self._view])
            if not got:
                return
            left -= got
        raise HelperError(f"more than {limit >> 20} MiB after the end-of-archive marker "
                          f"(at byte {self.offset}): not a tar archive we accept")


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
        if length <= 0 or stop > end or equals >= stop or data[stop - 1] != 0x0A:
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
    seconds = _bounded(int(whole or b"0"), 0, _MAX_SECONDS, "time")
    ns = seconds * 1_000_000_000 + int(frac[:9].ljust(9, b"0"))
    return -ns if negative else ns


def _header_time_ns(field: bytes) -> int:
    return _bounded(_number(field), -_MAX_SECONDS, _MAX_SECONDS, "mtime") * 1_000_000_000


def _pax_int(value: bytes, what: str, limit: int) -> int:
    """A pax number: decimal digits only (int() would take "-1" or " 1_0")."""
    if not value.isdigit():
        raise ValueError(f"bad {what} {value[:40]!r}")
    return _bounded(int(value), 0, limit, what)


def _bounded(value: int, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is out of range")
    return value


def _merge(globals_: dict[str, bytes], local: dict[str, bytes]) -> dict[str, bytes]:
    """Local records over global ones; an empty value unsets a keyword
    (except for xattrs, whose value may be empty)."""
    merged = {**globals_, **local}
    return {key: value for key, value in merged.items()
            if value or key.startswith(_XATTR_KEYS)}


class TarReader:
    """Iterate over the members of a tar stream; copy each one's data before
    asking for the next (unread data is skipped)."""

    def __init__(self, stream: Stream, max_size: int | None = None) -> None:
        self.stream = stream
        self.max_size = max_size  # bytes the whole uncompressed stream may hold
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
        meta = 0  # bytes of pax records and long names held for this member
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
            size = self._size(fields)
            if flag in (b"x", b"g", b"L", b"K"):
                meta += size
                if meta > _MAX_META:
                    raise self._error(f"{meta} bytes of pax headers and long names, "
                                      "more than we accept")
            if flag in (b"x", b"g"):
                records = self._parse_pax(self._read_meta(size, "pax header"))
                (local if flag == b"x" else self._globals).update(records)
                if sum(map(len, self._globals.values())) > _MAX_META:
                    raise self._error("its global pax headers hold more than we accept")
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

    def _size(self, fields: tuple[bytes, ...]) -> int:
        """The header's size field, checked: a negative size would seek back."""
        try:
            return _bounded(_number(fields[_SIZE]), 0, _MAX_SIZE, "size")
        except ValueError:
            raise self._error(f"bad size field {fields[_SIZE]!r}") from None

    def _pax_size(self, value: bytes) -> int:
        try:
            return _pax_int(value, "pax size", _MAX_SIZE)
        except ValueError as exc:
            raise self._error(str(exc)) from None

    def _check_max_size(self, member: Member, data: int) -> None:
        if self.max_size is not None and self.stream.offset + data > self.max_size:
            raise self._error(f"the archive holds more than max_size ({self.max_size} "
                              "bytes, uncompressed)", member.name)

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
        if "\0" in name:
            raise self._error(f"a NUL byte in its name {name!r}")
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
            if b"\0" in link:
                raise ValueError("a NUL byte in its link target")
            member = _make_member(fields, name, kind, size, pax, os.fsdecode(link))
            for key in special:
                _add_xattr(member, key, pax[key])
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._error(f"bad header field ({exc})", name) from None
        # only regular files (and GNU dumpdirs) are followed by data, as in tarfile
        data = member.size if kind == "file" or flag == b"D" else 0
        if flag == b"D" and data > _MAX_META:  # a listing no one reads: skipped, so bounded
            raise self._error(f"its dumpdir listing is {data} bytes long, more than we accept",
                              name)
        self._check_max_size(member, data)
        self._left, self._pad = data, -data % BLOCK
        return member


def _make_member(fields: tuple[bytes, ...], name: str, kind: str, size: int,
                 pax: dict[str, bytes], link: str) -> Member:
    """The member from its header's fields, any pax records overriding them;
    every number checked against what the system calls will take."""
    devices = kind in ("char", "block")

    def number(index: int, key: str, limit: int, low: int = 0) -> int:
        value = pax.get(key) if pax else None
        if value:
            return _pax_int(value, key, limit)
        return _bounded(_number(fields[index]), low, limit, key)

    mtime = pax.get("mtime") if pax else None
    member = Member(
        name, kind, size, _bounded(_number(fields[_MODE]), 0, _MAX_SIZE, "mode") & 0o7777,
        number(_UID, "uid", _MAX_ID), number(_GID, "gid", _MAX_ID),
        _pax_time_ns(mtime) if mtime else _header_time_ns(fields[_MTIME]), link,
        number(_DEVMAJOR, "SCHILY.devmajor", _MAX_DEVICE) if devices else 0,
        number(_DEVMINOR, "SCHILY.devminor", _MAX_DEVICE) if devices else 0)
    if pax and "atime" in pax:
        member.atime_ns = _pax_time_ns(pax["atime"])
    return member


def _add_xattr(member: Member, key: str, value: bytes) -> None:
    if key.startswith("SCHILY.xattr."):
        name = key[13:]
    else:
        name, value = _libarchive_xattr(key[17:], value)
    if "\0" in name or not name:
        raise ValueError(f"bad xattr name {name!r}")
    if name.startswith(_OVERLAY_XATTRS):
        # the overlay filesystem's own: in a layer they would whiteout or hide
        # files, and the pack step cannot store them
        raise ValueError(f"xattr {name!r} belongs to the overlay filesystem")
    member.xattrs[name] = value


def _libarchive_xattr(name: str, value: bytes) -> tuple[str, bytes]:
    """bsdtar's form: the name URL-encoded, the value base64."""
    import base64
    import urllib.parse
    return urllib.parse.unquote(name), base64.b64decode(value + b"=" * (-len(value) % 4))
