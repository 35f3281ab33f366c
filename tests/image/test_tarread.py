"""The tar reader on the header forms GNU tar alone does not produce here."""

from __future__ import annotations

import base64
import io
import os
import tarfile
from pathlib import Path

import pytest
from acigen.helpers.archive import sniff
from acigen.helpers.common import HelperError
from acigen.helpers.tarread import Member, Stream, TarReader


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
