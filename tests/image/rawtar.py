"""Tar headers byte by byte, for the malformed ones no tar writer makes."""

from __future__ import annotations

BLOCK = 512
END = bytes(2 * BLOCK)
_FIELDS = (  # name, offset, length, default (as ustar writes them)
    ("name", 0, 100, b""), ("mode", 100, 8, b"0000644\0"), ("uid", 108, 8, b"0000000\0"),
    ("gid", 116, 8, b"0000000\0"), ("size", 124, 12, b"00000000000\0"),
    ("mtime", 136, 12, b"00000000000\0"), ("typeflag", 156, 1, b"0"),
    ("linkname", 157, 100, b""), ("magic", 257, 8, b"ustar\x0000"),
    ("devmajor", 329, 8, b""), ("devminor", 337, 8, b""),
)


def header(name: bytes, **fields: bytes) -> bytes:
    """One header block, FIELDS given as raw bytes, its checksum right."""
    block = bytearray(BLOCK)
    values = {"name": name, **fields}
    for field, offset, length, default in _FIELDS:
        value = values.pop(field, default)
        assert len(value) <= length, field
        block[offset:offset + len(value)] = value
    assert not values, f"unknown fields {values}"
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    return bytes(block)


def octal(value: int, length: int = 12) -> bytes:
    return b"%0*o\0" % (length - 1, value)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def member(name: bytes, data: bytes = b"", **fields: bytes) -> bytes:
    """A regular file member with DATA (its size field set unless given)."""
    fields.setdefault("size", octal(len(data)))
    return header(name, **fields) + padded(data)


def pax_record(key: bytes, value: bytes) -> bytes:
    """`LEN key=value\\n`, LEN counting itself."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length += 1
    return b"%d" % length + body


def pax(records: bytes, name: bytes = b"PaxHeader", flag: bytes = b"x") -> bytes:
    return header(name, typeflag=flag, size=octal(len(records))) + padded(records)
