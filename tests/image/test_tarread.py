"""The tar reader on the header forms GNU tar alone does not produce here."""

from __future__ import annotations

import base64
import io
import os
import tarfile
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.tar.decompress import sniff
from acigen.helpers.tar.reader import TRAILING_MAX, Member, Stream, TarReader
from tests.image import rawtar


def archive(tmp_path: Path, infos: list[tarfile.TarInfo], fmt: int = tarfile.PAX_FORMAT,
            **options: object) -> Path:
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w", format=fmt, **options) as tar:  # type: ignore[call-overload]
        for info in infos:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def members(path: Path) -> list[Member]:
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = TarReader(Stream(fd))
        found = []
        for member in reader:
            found.append(member)
        return found
    finally:
        os.close(fd)


def info(name: str, size: int = 0, **fields: object) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.size = size
    for key, value in fields.items():
        setattr(entry, key, value)
    return entry


def test_pax_global_header_applies_to_every_member(tmp_path: Path) -> None:
    path = archive(tmp_path, [info("a"), info("b")], pax_headers={"uid": "4242"})
    assert [m.uid for m in members(path)] == [4242, 4242]


def test_big_ids_in_gnu_base_256(tmp_path: Path) -> None:
    path = archive(tmp_path, [info("a", uid=10_000_000, gid=3_000_000)], tarfile.GNU_FORMAT)
    (member,) = members(path)
    assert (member.uid, member.gid) == (10_000_000, 3_000_000)


def test_pax_times_fractional_and_negative(tmp_path: Path) -> None:
    late, early = info("late"), info("early")
    late.pax_headers = {"mtime": "1700000000.5", "atime": "1700000001.000000001"}
    early.pax_headers = {"mtime": "-1.25"}
    got = {m.name: m for m in members(archive(tmp_path, [late, early]))}
    assert got["late"].mtime_ns == 1_700_000_000_500_000_000
    assert got["late"].atime_ns == 1_700_000_001_000_000_001
    assert got["early"].mtime_ns == -1_250_000_000


def test_xattrs_as_gnu_tar_and_bsdtar_write_them(tmp_path: Path) -> None:
    entry = info("f", 3)
    entry.pax_headers = {
        "SCHILY.xattr.user.gnu": "from GNU tar",
        "LIBARCHIVE.xattr.user.with%20space": base64.b64encode(b"\x00\xffbin").decode().rstrip("="),
    }
    (member,) = members(archive(tmp_path, [entry]))
    assert member.xattrs == {"user.gnu": b"from GNU tar", "user.with space": b"\x00\xffbin"}


def test_long_names_and_link_targets(tmp_path: Path) -> None:
    long_dir = "d" * 150
    link = info(f"{long_dir}/link", type=tarfile.SYMTYPE, linkname="t" * 200)
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        (member,) = members(archive(tmp_path, [link], fmt))
        assert (member.name, member.linkname) == (f"{long_dir}/link", "t" * 200)


def test_ustar_prefix_field(tmp_path: Path) -> None:
    name = "p" * 120 + "/file"  # fits ustar only through its prefix field
    (member,) = members(archive(tmp_path, [info(name, 5)], tarfile.USTAR_FORMAT))
    assert member.name == name and member.size == 5


def test_corrupt_header_is_located(tmp_path: Path) -> None:
    path = archive(tmp_path, [info("first", 10), info("second")], tarfile.USTAR_FORMAT)
    data = bytearray(path.read_bytes())
    data[1024 + 10] ^= 0x55  # the second header starts after first's header and data
    path.write_bytes(bytes(data))
    with pytest.raises(HelperError, match=r"bad header checksum at byte 1024 "
                                          r"\(after member 'first'\)"):
        members(path)


def test_pre_posix_header_without_magic(tmp_path: Path) -> None:
    """A v7 header: no magic, directories marked by a trailing slash."""
    path = archive(tmp_path, [info("dir/", type=tarfile.REGTYPE), info("dir/f", 2)],
                   tarfile.USTAR_FORMAT)
    data = bytearray(path.read_bytes())
    for start in (0, 512):
        data[start + 257:start + 265] = bytes(8)  # no "ustar" magic and version
        data[start + 148:start + 156] = b" " * 8
        data[start + 148:start + 155] = b"%06o\0" % sum(data[start:start + 512])
    path.write_bytes(bytes(data))
    assert sniff(bytes(data[:512])) == "tar"
    assert [(m.name, m.kind) for m in members(path)] == [("dir/", "dir"), ("dir/f", "file")]


def test_pax_sparse_is_refused(tmp_path: Path) -> None:
    entry = info("holes", 4)
    entry.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    with pytest.raises(HelperError, match="member 'holes': GNU sparse files are not supported"):
        members(archive(tmp_path, [entry]))


def test_truncated_data(tmp_path: Path) -> None:
    path = archive(tmp_path, [info("big", 100_000)], tarfile.USTAR_FORMAT)
    path.write_bytes(path.read_bytes()[:50_000])
    with open(path, "rb") as src, open(os.devnull, "wb") as sink:
        reader = TarReader(Stream(src.fileno()))
        with pytest.raises(HelperError, match="the archive is truncated"):
            for _member in reader:
                reader.copy_data(sink.fileno())


# -- malformed headers: one line naming the member, never a loop ------------

def raw_members(tmp_path: Path, data: bytes) -> list[Member]:
    path = tmp_path / "raw.tar"
    path.write_bytes(data)
    return members(path)


@pytest.mark.parametrize("size", [b"-0001000\0", b"\xff" * 12, b"\x80" + b"\xff" * 11],
                         ids=["octal-negative", "base256-negative", "base256-huge"])
def test_size_out_of_range_is_refused(tmp_path: Path, size: bytes) -> None:
    data = rawtar.member(b"first", b"x") + rawtar.header(b"bad", size=size) + rawtar.END
    with pytest.raises(HelperError, match=r"the entry after 'first': bad size field"):
        raw_members(tmp_path, data)


@pytest.mark.parametrize(("record", "why"), [
    (rawtar.pax_record(b"path", b"a\0b"), "a NUL byte in its name"),
    (rawtar.pax_record(b"linkpath", b"a\0b"), "a NUL byte in its link target"),
    (rawtar.pax_record(b"uid", b"9" * 30), "uid 9+ is out of range"),
    (rawtar.pax_record(b"uid", b"-1"), "bad uid"),
    (rawtar.pax_record(b"gid", b"4294967295"), "gid 4294967295 is out of range"),
    (rawtar.pax_record(b"mtime", b"9" * 30), "time 9+ is out of range"),
    (rawtar.pax_record(b"size", b"9" * 30), "pax size 9+ is out of range"),
    (b"99 path=x\n", "malformed pax header"),  # longer than the header holds
    (rawtar.pax_record(b"SCHILY.xattr.user.a\0b", b"v"), "bad xattr name"),
    (rawtar.pax_record(b"LIBARCHIVE.xattr.user.a%00b", b""), "bad xattr name"),
    (rawtar.pax_record(b"SCHILY.xattr.trusted.overlay.opaque", b"y"),
     "'trusted.overlay.opaque' belongs to the overlay filesystem"),
])
def test_bad_pax_record_is_one_error(tmp_path: Path, record: bytes, why: str) -> None:
    data = rawtar.pax(record) + rawtar.header(b"victim", typeflag=b"2", linkname=b"t")
    with pytest.raises(HelperError, match=why):
        raw_members(tmp_path, data + rawtar.END)


@pytest.mark.parametrize(("field", "value"), [
    ("uid", b"\xff" * 8), ("mtime", b"\x80" + b"\x7f" * 11), ("devmajor", b"\x80" + b"\xff" * 7)])
def test_header_number_out_of_range(tmp_path: Path, field: str, value: bytes) -> None:
    data = rawtar.header(b"node", typeflag=b"3", **{field: value}) + rawtar.END
    with pytest.raises(HelperError, match=r"member 'node': bad header field \(.* out of range"):
        raw_members(tmp_path, data)


def test_metadata_piling_up_is_refused(tmp_path: Path) -> None:
    record = rawtar.pax_record(b"comment", b"c" * 600_000)
    data = rawtar.pax(record) + rawtar.pax(record) + rawtar.member(b"f") + rawtar.END
    with pytest.raises(HelperError, match="bytes of pax headers and long names"):
        raw_members(tmp_path, data)


def test_reading_stops_at_the_end_marker(tmp_path: Path) -> None:
    """Whatever follows the two zero blocks is not read as members."""
    data = rawtar.member(b"a", b"1") + rawtar.END + rawtar.member(b"after", b"2")
    assert [m.name for m in raw_members(tmp_path, data)] == ["a"]


def test_trailing_data_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "t.tar"
    with open(path, "wb") as out:
        out.write(rawtar.member(b"a", b"1") + rawtar.END)
        out.truncate(out.tell() + TRAILING_MAX + 1)  # sparse: costs no disk
    fd = os.open(path, os.O_RDONLY)
    try:
        stream = Stream(fd)
        assert [m.name for m in TarReader(stream)] == ["a"]
        with pytest.raises(HelperError, match=r"more than 16 MiB after the end-of-archive"):
            stream.drain()
    finally:
        os.close(fd)


def test_max_size_names_the_member(tmp_path: Path) -> None:
    path = tmp_path / "t.tar"
    path.write_bytes(rawtar.member(b"small", b"x" * 100) + rawtar.member(b"big", b"y" * 5000)
                     + rawtar.END)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = TarReader(Stream(fd), max_size=4096)
        with pytest.raises(HelperError, match=r"member 'big': the archive holds more than "
                                              r"max_size \(4096 bytes"):
            list(reader)
    finally:
        os.close(fd)
