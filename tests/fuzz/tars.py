"""Seeded generators of malformed tar archives: every header field, pax records."""

from __future__ import annotations

import random

from tests.image import rawtar

# (offset, length) of every ustar header field but the checksum
FIELDS = {
    "name": (0, 100), "mode": (100, 8), "uid": (108, 8), "gid": (116, 8), "size": (124, 12),
    "mtime": (136, 12), "typeflag": (156, 1), "linkname": (157, 100), "magic": (257, 6),
    "version": (263, 2), "uname": (265, 32), "gname": (297, 32), "devmajor": (329, 8),
    "devminor": (337, 8), "prefix": (345, 155),
}
PAX_KEYS = [b"path", b"linkpath", b"size", b"uid", b"gid", b"mtime", b"atime", b"uname",
            b"SCHILY.devmajor", b"SCHILY.devminor", b"SCHILY.xattr.user.x",
            b"SCHILY.xattr.trusted.overlay.opaque", b"LIBARCHIVE.xattr.user.y",
            b"LIBARCHIVE.xattr.%00", b"GNU.sparse.major", b"comment", b""]


def field_value(rng: random.Random, length: int) -> bytes:
    """A hostile value for a numeric or text field of LENGTH bytes."""
    choice = rng.randrange(9)
    if choice == 0:
        return rng.randbytes(length)
    if choice == 1:  # octal, maybe negative, maybe too long for the field
        return b"%o" % rng.choice([-1, -512, 0, 7, 1 << 33, (1 << 64) + 1])
    if choice == 2:  # GNU base-256, positive or negative
        return bytes([rng.choice([0x80, 0xFF])]) + rng.randbytes(length - 1)
    if choice == 3:
        return b""
    if choice == 4:
        return b" " * length
    if choice == 5:
        return b"9" * length
    if choice == 6:
        return rng.choice([b"..", b"/", b"../../x", b"a/../../b", b"\xff\xfe", b"a\0b"])
    if choice == 7:
        return rng.choice([b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"x", b"g", b"L",
                           b"K", b"S", b"V", b"D", b"M", b"Z", b"\0"])
    return b"%d" % rng.randrange(1 << 20)


def base_members(rng: random.Random, outside: str) -> list[bytes]:
    """A small valid archive's members, one header (and its data) each."""
    target = rng.choice([outside, "../../..", "d", "/etc", "l"]).encode()
    members = [rawtar.header(b"d/", typeflag=b"5", mode=b"0000755\0"),
               rawtar.member(b"d/f", rng.randbytes(rng.randrange(2000))),
               rawtar.header(b"l", typeflag=b"2", linkname=target),
               rawtar.header(b"h", typeflag=b"1", linkname=b"d/f"),
               rawtar.header(b"p", typeflag=b"6"),
               rawtar.header(b"c", typeflag=b"3", devmajor=b"0000001\0", devminor=b"0000003\0")]
    rng.shuffle(members)
    return members


def mutated_header(rng: random.Random, block: bytes) -> bytes:
    """BLOCK (a header and maybe data) with one to three fields replaced."""
    data = bytearray(block)
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(list(FIELDS))
        offset, length = FIELDS[name]
        value = field_value(rng, length)[:length]
        data[offset:offset + length] = value.ljust(length, b"\0")
    if rng.random() < 0.9:  # mostly a right checksum, so that the field is read
        data[148:156] = b" " * 8
        data[148:155] = b"%06o\0" % sum(data[:512])
    return bytes(data)


def header_case(rng: random.Random, outside: str) -> bytes:
    members = base_members(rng, outside)
    index = rng.randrange(len(members))
    members[index] = mutated_header(rng, members[index])
    return b"".join(members) + rawtar.END + bytes(rng.choice([0, 512, 9216]))


def pax_records(rng: random.Random, outside: str) -> bytes:
    records = b""
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(PAX_KEYS)
        value = rng.choice([
            b"", b"-1", b"9" * rng.randint(1, 40), b"1.5", b"-1.000000001", b"1e9",
            b"a\0b", outside.encode(), b"../../x", rng.randbytes(rng.randrange(30)),
            b"=", b"\n", b"x" * rng.randrange(300)])
        record = rawtar.pax_record(key, value)
        if rng.random() < 0.3:  # a length that lies
            record = b"%d" % rng.choice([0, 1, 5, 999, len(record) + 1]) + \
                record[record.index(b" "):]
        records += record
    return records


def pax_case(rng: random.Random, outside: str) -> bytes:
    flag = rng.choice([b"x", b"x", b"g"])
    target = rawtar.member(b"victim", b"v" * rng.randrange(100)) if rng.random() < 0.5 else \
        rawtar.header(b"victim", typeflag=rng.choice([b"2", b"1", b"5", b"0"]), linkname=b"d/f")
    members = [rawtar.header(b"d/", typeflag=b"5"), rawtar.member(b"d/f", b"data"),
               rawtar.pax(pax_records(rng, outside), flag=flag), target]
    return b"".join(members) + rawtar.END
