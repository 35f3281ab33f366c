"""The tar writer, entry by entry, read back by GNU tar and Python's tarfile."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from acigen.helpers.tar.writer import (
    DIRECTORY,
    HARDLINK,
    REGULAR,
    SYMLINK,
    Entry,
    TreeWriter,
    header,
    write_end,
    write_entry,
)
from tests.pack.tarstream_child import EPOCH, LONE, OLD, XATTRS

REPO = Path(__file__).resolve().parents[2]


class Buffer:
    """A sink that keeps the bytes and where entries start."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.marks: list[int] = []

    def mark(self, key: bytes) -> None:
        self.marks.append(len(self.data))

    def write(self, data: bytes) -> None:
        self.data += data


def archive(*entries: tuple[Entry, bytes]) -> bytes:
    sink = Buffer()
    for entry, data in entries:
        write_entry(sink, entry, data)
    write_end(sink)
    return bytes(sink.data)


def gnu_list(data: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "t.tar"
    path.write_bytes(data)
    result = subprocess.run(["tar", "--numeric-owner", "--full-time", "--quoting-style=literal",
                             "-tvf", str(path)],
                            capture_output=True, check=True)
    assert result.stderr == b""
    return result.stdout.decode("utf-8", "surrogateescape").splitlines()


def test_a_plain_entry_needs_no_pax_header() -> None:
    block = header(Entry(b"rootfs/etc/hostname", REGULAR, 0o644, 0, 0, 0, 5))
    assert len(block) == 512
    assert block[257:265] == b"ustar\x0000"
    assert block[265:329] == bytes(64)  # uname and gname empty: numeric owners


@pytest.mark.parametrize("name", [
    b"rootfs/" + b"a" * 93,  # exactly 100 bytes
    b"rootfs/" + b"a" * 60 + b"/" + b"b" * 60,  # split into prefix and name
    b"rootfs/" + b"a" * 140 + b"/" + b"b" * 100,  # split at the limits: 155 + 100
    b"rootfs/" + b"d" * 120 + b"/" + b"e" * 120 + b"/f",  # > 255: pax path
    b"rootfs/" + b"x" * 200,  # one long component: pax path
    b"rootfs/caf\xe9/" + b"\xff" * 120,  # not UTF-8, long: raw bytes in the pax path
])
def test_names_of_any_length_read_back(name: bytes, tmp_path: Path) -> None:
    data = archive((Entry(name, REGULAR, 0o644, 0, 0, 0, 3), b"abc"))
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as tar:
        [member] = tar.getmembers()
        assert os.fsencode(member.name) == name
        assert tar.extractfile(member).read() == b"abc"  # type: ignore[union-attr]
    [line] = gnu_list(data, tmp_path)
    assert line.endswith(" " + os.fsdecode(name))
    needs_pax = len(name) > 100 and not name.startswith(b"rootfs/a")
    assert (b"@PaxHeader" in data) == needs_pax


def test_directories_end_in_a_slash_and_links_keep_their_targets(tmp_path: Path) -> None:
    long_target = b"t" * 150
    data = archive((Entry(b"rootfs/", DIRECTORY, 0o755, 0, 0, 0), b""),
                   (Entry(b"rootfs/f", REGULAR, 0o644, 0, 0, 0, 2), b"hi"),
                   (Entry(b"rootfs/g", HARDLINK, 0o644, 0, 0, 0, linkname=b"rootfs/f"), b""),
                   (Entry(b"rootfs/s", SYMLINK, 0o777, 0, 0, 0, linkname=long_target), b""))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        root, f, g, s = tar.getmembers()
    assert root.isdir() and f.isfile() and g.islnk() and s.issym()
    assert g.linkname == "rootfs/f"
    assert s.linkname == long_target.decode()
    assert gnu_list(data, tmp_path)[3].endswith("rootfs/s -> " + long_target.decode())


def test_big_ids_and_times_go_to_the_pax_header(tmp_path: Path) -> None:
    entry = Entry(b"rootfs/f", REGULAR, 0o4755, 3_000_000, 4_000_000, -86400, 1)
    data = archive((entry, b"x"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        [member] = tar.getmembers()
    assert (member.uid, member.gid, member.mtime, member.mode) == (
        3_000_000, 4_000_000, -86400, 0o4755)
    [line] = gnu_list(data, tmp_path)
    assert line.split() == ["-rwsr-xr-x", "3000000/4000000", "1", "1969-12-31", "00:00:00",
                            "rootfs/f"]


def test_an_8_gib_size_is_a_pax_record() -> None:
    block = header(Entry(b"rootfs/huge", REGULAR, 0o644, 0, 0, 0, 9 << 30))
    assert b" size=%d\n" % (9 << 30) in block
    assert len(block) == 3 * 512  # pax header, its records, the entry


def test_xattrs_are_binary_safe_pax_records() -> None:
    value = b"\x01\x00\x00\x02\n=\xff"
    entry = Entry(b"rootfs/ping", REGULAR, 0o755, 0, 0, 0, 0,
                  xattrs=((b"security.capability", value), (b"user.a", b"")))
    data = archive((entry, b""))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        [member] = tar.getmembers()
    raw = member.pax_headers["SCHILY.xattr.security.capability"]
    assert raw.encode("utf-8", "surrogateescape") == value
    assert member.pax_headers["SCHILY.xattr.user.a"] == ""


@pytest.mark.parametrize("size", range(85, 110))
def test_pax_record_lengths_count_themselves(size: int) -> None:
    """Around the point where the length field gains a digit."""
    entry = Entry(b"rootfs/f", REGULAR, 0o644, 0, 0, 0, xattrs=((b"user.k", b"v" * size),))
    data = archive((entry, b""))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        [member] = tar.getmembers()
    assert member.pax_headers["SCHILY.xattr.user.k"] == "v" * size


# two processes that share nothing a writer could leak into its output
ENVIRONMENTS = (
    ({"TZ": "UTC", "LC_ALL": "C", "PYTHONHASHSEED": "1"}, 0o022, "forward", 0),
    ({"TZ": "Pacific/Kiritimati", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "2"}, 0o077,
     "reverse", 9 * 86400),
)


def tar_in_a_process(directory: Path, env: dict[str, str], umask: int, order: str,
                     shift: int) -> bytes:
    result = subprocess.run(
        [sys.executable, "-m", "tests.pack.tarstream_child", str(directory), order, str(shift)],
        env=dict(os.environ, **env), umask=umask, cwd=REPO, capture_output=True, check=True)
    assert result.stderr == b""
    return result.stdout


def test_separate_processes_write_the_same_bytes(tmp_path: Path) -> None:
    """The same tree, made in another order at another time, written by a process
    with another time zone, locale, hash seed and umask: the same bytes."""
    first, second = (tar_in_a_process(tmp_path / str(n), *environment)
                     for n, environment in enumerate(ENVIRONMENTS))
    assert first == second
    lone = header(LONE)
    assert first.startswith(lone) and b"@PaxHeader" in lone  # as this process writes it
    with tarfile.open(fileobj=io.BytesIO(first[len(lone):])) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == ["rootfs", "rootfs/a", "rootfs/a/hard", "rootfs/a/x", "rootfs/a/y",
                             "rootfs/b", "rootfs/c", "rootfs/s", "rootfs/zz",
                             "rootfs/zz/" + "n" * 120]
    assert members["rootfs/c"].islnk() and members["rootfs/c"].linkname == "rootfs/a/hard"
    assert {m.mtime for m in members.values()} == {EPOCH, OLD}  # clamped, or older and kept
    assert list(members["rootfs/b"].pax_headers) == [f"SCHILY.xattr.{k}" for k in sorted(XATTRS)]


def test_tree_writer_marks_every_entry(tmp_path: Path) -> None:
    for name in ("b", "a/x", "a/y", "c"):
        (tmp_path / "t" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "t" / name).write_text(name)
    sink = Buffer()
    writer = TreeWriter(sink, 0)
    writer.write_tree(os.fsencode(tmp_path / "t"), b"rootfs")
    write_end(sink)
    with tarfile.open(fileobj=io.BytesIO(bytes(sink.data))) as tar:
        names = tar.getnames()
        offsets = [m.offset for m in tar.getmembers()]
    assert names == ["rootfs", "rootfs/a", "rootfs/a/x", "rootfs/a/y", "rootfs/b", "rootfs/c"]
    assert sink.marks[:-1] == offsets  # the last mark: the end of the archive
    assert writer.entries == 6


def test_a_file_that_shrinks_while_packed_is_an_error(tmp_path: Path) -> None:
    from acigen.errors import HelperError

    class Shrinking(Buffer):
        def mark(self, key: bytes) -> None:
            if b"rootfs/f" in key:
                (tmp_path / "t" / "f").write_bytes(b"x")
            super().mark(key)

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_bytes(b"x" * 1000)
    with pytest.raises(HelperError, match="shrank"):
        TreeWriter(Shrinking(), 0).write_tree(os.fsencode(tmp_path / "t"), b"rootfs")
