"""acigen-unpack extracts exactly what GNU tar extracts."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.run.cache import identify
from acigen.helpers.tar.reader import TRAILING_MAX
from acigen.helpers.unpack.image import unpack_archive
from tests.image import rawtar
from tests.image.conftest import REPO, error_lines, run_helper
from tests.image.treediff import describe, differences
from tests.support.rootfs import debian_minbase_tarball

GNU_TAR_X = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf"]
COMPRESS = {"tar": None, "gzip": ["gzip", "-c"], "bzip2": ["bzip2", "-c"],
            "xz": ["xz", "-c", "-T1"], "zstd": ["zstd", "-q", "-c"]}


def gnu_extract(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    subprocess.run([*GNU_TAR_X, str(archive), "-C", str(dest)], check=True)
    return dest


def ours(archive: Path, dest: Path, devices: str = "keep") -> Path:
    dest.mkdir()
    unpack_archive(str(archive), str(dest), devices)
    return dest


def assert_same_tree(mine: Path, theirs: Path) -> None:
    diff = differences(describe(str(mine)), describe(str(theirs)))
    assert diff == [], "\n".join(diff[:40])


def capability(bit: int) -> bytes:
    """A security.capability value (VFS_CAP_REVISION_2, effective) for one bit."""
    return struct.pack("<IIIII", 0x02000001, 1 << bit, 0, 0, 0)


def feature_tree(top: Path) -> Path:
    """Every kind of entry and property an image can hold."""
    top.mkdir()
    (top / "bin").mkdir()
    big = top / "bin" / "big"
    big.write_bytes(os.urandom(3 << 20))  # large enough for the in-kernel copy path
    (top / "bin" / "suid").write_bytes(b"#!/bin/sh\n")
    os.chmod(top / "bin" / "suid", 0o4755)
    (top / "bin" / "ping").write_bytes(b"\x7fELF pretend")
    os.chmod(top / "bin" / "ping", 0o755)
    os.setxattr(top / "bin" / "ping", "security.capability", capability(13))
    os.link(big, top / "bin" / "big-link1")
    os.link(big, top / "bin" / "big-link2")
    shared = top / "srv"
    shared.mkdir()
    os.chmod(shared, 0o2775)
    os.chown(shared, 1234, 5678)
    (top / "tmp").mkdir()
    os.chmod(top / "tmp", 0o1777)
    (top / "etc").mkdir()
    owned = top / "etc" / "owned"
    owned.write_text("x")
    os.chown(owned, 4321, 8765)
    os.setxattr(owned, "user.comment", b"hello\0binary\xff")
    os.setxattr(owned, "trusted.acigen", b"")
    os.setxattr(shared, "user.dir", b"on a directory")
    (top / "usr" / "bin").mkdir(parents=True)
    os.symlink("/etc/alternatives/awk", top / "usr" / "bin" / "awk")
    os.symlink("../etc/owned", top / "usr" / "rel")
    os.mkfifo(top / "tmp" / "fifo")
    (top / "dev").mkdir()
    os.mknod(top / "dev" / "null", 0o20666, os.makedev(1, 3))
    os.mknod(top / "dev" / "loop0", 0o60660, os.makedev(7, 0))
    deep = top / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / ("f" * 120)).write_text("long name")
    os.symlink("t" * 150, top / "longlink")
    (top / os.fsdecode(b"caf\xe9-latin1")).write_text("not utf-8")
    (top / "empty").write_bytes(b"")
    os.utime(top / "empty", ns=(0, 123_456_789))
    os.utime(owned, ns=(5, 1_700_000_000_987_654_321))
    os.utime(top / "bin", ns=(0, 1_600_000_000_000_000_000))
    return top


def tar_of(tree: Path, out: Path, fmt: str = "posix", compression: str = "tar") -> Path:
    plain = out.with_name(out.name + ".plain")
    xattrs = ["--xattrs", "--xattrs-include=*"] if fmt == "posix" else []  # gnu has none
    subprocess.run(["tar", "--numeric-owner", *xattrs, "--sort=name", f"--format={fmt}",
                    "-C", str(tree), "-cf", str(plain), "."], check=True)
    if COMPRESS[compression] is None:
        plain.rename(out)
    else:
        with open(plain, "rb") as src, open(out, "wb") as dst:
            subprocess.run(COMPRESS[compression], stdin=src, stdout=dst, check=True)
        plain.unlink()
    return out


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return feature_tree(tmp_path_factory.mktemp("features") / "tree")


@pytest.mark.parametrize("compression", list(COMPRESS))
def test_every_property_survives_in_every_compression(features: Path, tmp_path: Path,
                                                      compression: str) -> None:
    # the name says nothing: compression is recognised by content
    archive = tar_of(features, tmp_path / "image.tar", compression=compression)
    assert_same_tree(ours(archive, tmp_path / "mine"), gnu_extract(archive, tmp_path / "gnu"))


def test_gnu_format_long_names(features: Path, tmp_path: Path) -> None:
    archive = tar_of(features, tmp_path / "image.tar", fmt="gnu")
    assert_same_tree(ours(archive, tmp_path / "mine"), gnu_extract(archive, tmp_path / "gnu"))


def test_the_tree_was_really_rich(features: Path, tmp_path: Path) -> None:
    """Guard the guard: the comparison above covers what it claims to."""
    mine = describe(str(ours(tar_of(features, tmp_path / "i.tar"), tmp_path / "mine")))
    assert mine["bin/ping"]["xattrs"] == {"security.capability": capability(13)}
    assert mine["bin/suid"]["mode"] == 0o4755 and mine["srv"]["mode"] == 0o2775
    assert (mine["srv"]["uid"], mine["srv"]["gid"]) == (1234, 5678)
    assert mine["bin/big-link2"]["links"] == "bin/big" and mine["bin/big"]["nlink"] == 3
    assert mine["dev/loop0"]["rdev"] == (7, 0)
    assert mine["etc/owned"]["mtime_ns"] == 1_700_000_000_987_654_321
    assert mine["usr/bin/awk"]["target"] == "/etc/alternatives/awk"


def test_debian_minbase_equals_gnu_tar(tmp_path: Path) -> None:
    archive = debian_minbase_tarball()
    assert_same_tree(ours(archive, tmp_path / "mine"), gnu_extract(archive, tmp_path / "gnu"))


def test_an_aci_unpacks_its_rootfs(tmp_path: Path) -> None:
    """An image can start from another ACI: its rootfs/ becomes the root."""
    gnu = gnu_extract(debian_minbase_tarball(), tmp_path / "aci" / "rootfs")
    (tmp_path / "aci" / "manifest").write_text('{"acKind": "ImageManifest"}')
    aci = tmp_path / "base.aci"
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C",
                    str(tmp_path / "aci"), "-czf", str(aci), "manifest", "rootfs"], check=True)
    mine = tmp_path / "mine"
    mine.mkdir()
    result = unpack_archive(str(aci), str(mine), "keep")
    assert result.aci and result.compression == "gzip"
    assert not (mine / "manifest").exists()
    assert_same_tree(mine, gnu)


def test_aci_with_a_stray_top_level_entry(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "rootfs" / "etc").mkdir(parents=True)
    (src / "manifest").write_text("{}")
    (src / "extra").write_text("not allowed in an ACI")
    aci = tmp_path / "bad.aci"
    subprocess.run(["tar", "-C", str(src), "-cf", str(aci), "manifest", "rootfs", "extra"],
                   check=True)
    (tmp_path / "out").mkdir()
    with pytest.raises(HelperError, match=r"member 'extra': an ACI holds only"):
        unpack_archive(str(aci), str(tmp_path / "out"))


def test_by_hand_cli_is_all_or_nothing(features: Path, tmp_path: Path) -> None:
    archive = tar_of(features, tmp_path / "image.tar", compression="gzip")
    dest = tmp_path / "out"
    # device nodes are refused by default: nothing is left behind
    refused = run_helper("unpack", str(archive), str(dest))
    assert refused.returncode == 1
    line, hint = error_lines(refused)
    assert line == "acigen-unpack: error: member './dev/loop0': device nodes are not allowed here"
    assert "devices" in hint
    assert not dest.exists() and os.listdir(tmp_path) == ["image.tar"]
    done = run_helper("unpack", "--devices", "skip", str(archive), str(dest))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "2 device nodes skipped" in done.stdout
    assert (dest / "bin" / "big").read_bytes() == (features / "bin" / "big").read_bytes()
    assert not (dest / "dev" / "null").exists()
    again = run_helper("unpack", str(archive), str(dest))
    assert "exists and is not an empty directory" in error_lines(again)[0]


def test_pinned_by_hand(features: Path, tmp_path: Path) -> None:
    archive = tar_of(features, tmp_path / "image.tar")
    wrong = "0" * 64
    result = run_helper("unpack", "--sha256", wrong, str(archive), str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"sha256 mismatch: expected {wrong}, got " in error_lines(result)[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd"])
def test_truncated_compressed_archive(features: Path, tmp_path: Path, compression: str) -> None:
    archive = tar_of(features, tmp_path / "image.tar", compression=compression)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    (tmp_path / "out").mkdir()
    with pytest.raises(HelperError, match=r"truncated|ends early|failed"):
        unpack_archive(str(archive), str(tmp_path / "out"), "keep")


def test_corrupt_gzip_data(features: Path, tmp_path: Path) -> None:
    """A flipped byte: zlib's CRC check (or inflate itself) catches it."""
    archive = tar_of(features, tmp_path / "image.tar", compression="gzip")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    (tmp_path / "out").mkdir()
    with pytest.raises(HelperError, match=r"cannot decompress the archive|truncated|checksum"):
        unpack_archive(str(archive), str(tmp_path / "out"), "keep")


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"hello, this is not an archive" * 40)
    (tmp_path / "out").mkdir()
    with pytest.raises(HelperError, match="not a tar archive, nor gzip"):
        unpack_archive(str(junk), str(tmp_path / "out"))


def test_zstd_needs_its_program(features: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tar_of(features, tmp_path / "image.tar", compression="zstd")
    bin_dir = tmp_path / "bin"  # a PATH holding everything but zstd
    bin_dir.mkdir()
    for tool in ("bzip2", "xz"):
        found = shutil.which(tool)
        assert found
        os.symlink(found, bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    (tmp_path / "out").mkdir()
    with pytest.raises(HelperError, match="zstd-compressed and the zstd program is missing"):
        unpack_archive(str(archive), str(tmp_path / "out"), "keep")


@pytest.mark.parametrize("compression", ["bzip2", "xz"])
def test_python_decompresses_when_the_program_is_missing(
        features: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        compression: str) -> None:
    archive = tar_of(features, tmp_path / "image.tar", compression=compression)
    gnu = gnu_extract(archive, tmp_path / "gnu")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    assert_same_tree(ours(archive, tmp_path / "mine"), gnu)


@pytest.mark.parametrize("compression", ["tar", "gzip"])
def test_unpack_from_a_pipe(features: Path, tmp_path: Path, compression: str) -> None:
    """Non-seekable input (curl ... | acigen-unpack /dev/stdin DIR) works too."""
    archive = tar_of(features, tmp_path / "image.tar", compression=compression)
    with open(archive, "rb") as src:
        result = subprocess.run(
            [sys.executable, "-m", "acigen.helpers.unpack", "--devices", "keep", "/dev/stdin",
             str(tmp_path / "mine")], stdin=src, capture_output=True, text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    assert_same_tree(tmp_path / "mine", gnu_extract(archive, tmp_path / "gnu"))


def test_gzip_with_multiple_members_and_zero_padding(features: Path, tmp_path: Path) -> None:
    """Concatenated gzip members are one stream (as gzip -d reads them);
    zeros after the last member are tape padding."""
    plain = tar_of(features, tmp_path / "image.tar")
    data = plain.read_bytes()
    half = len(data) // 2
    parts = [subprocess.run(["gzip", "-c"], input=piece, capture_output=True,
                            check=True).stdout for piece in (data[:half], data[half:])]
    archive = tmp_path / "multi.tgz"
    archive.write_bytes(parts[0] + parts[1] + bytes(10240))
    assert_same_tree(ours(archive, tmp_path / "mine"), gnu_extract(plain, tmp_path / "gnu"))


def test_a_directory_replaced_by_a_file_then_made_again_starts_afresh(tmp_path: Path) -> None:
    """What was known of a removed directory's subtree (its setgid parent,
    its mode) must not apply to the entries that later take its place."""
    archive = tmp_path / "replace.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, gid: int = 0, data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.gid, info.size = kind, mode, gid, len(data)
            tar.addfile(info, io.BytesIO(data))
        add("./", tarfile.DIRTYPE, 0o755)
        add("p/", tarfile.DIRTYPE, 0o2755, gid=50)
        add("p/a/", tarfile.DIRTYPE, 0o700)
        add("p", tarfile.REGTYPE, 0o644, data=b"file\n")  # replaces the directory
        add("p/", tarfile.DIRTYPE, 0o2755, gid=50)  # a directory replaces the file
        add("p/a/x", tarfile.REGTYPE, 0o644, data=b"x\n")  # p/a/ made anew, in setgid p
    mine = ours(archive, tmp_path / "mine")
    assert (mine / "p" / "a" / "x").stat().st_gid == 0  # the member's, not p's
    assert (mine / "p").stat().st_mode & 0o7777 == 0o2755


@pytest.mark.parametrize("compression", ["gzip", "bzip2"])
def test_padding_after_the_end_marker_is_bounded(tmp_path: Path, compression: str) -> None:
    """A small archive that decompresses to endless padding fails in one line
    once the bound is passed, without reading the rest (a terabyte, say)."""
    tar = tmp_path / "t.tar"
    with open(tar, "wb") as out:
        out.write(rawtar.member(b"a", b"1") + rawtar.END)
        out.truncate(out.tell() + TRAILING_MAX + (1 << 20))
    packed = tmp_path / "t.tar.z"
    with open(tar, "rb") as src, open(packed, "wb") as out:
        subprocess.run(COMPRESS[compression], stdin=src, stdout=out, check=True)
    with pytest.raises(HelperError, match="MiB after the end-of-archive marker"):
        ours(packed, tmp_path / "out")
    with pytest.raises(HelperError, match="MiB after its end-of-archive marker"):
        identify(str(padded_aci(tmp_path, COMPRESS[compression])))


def padded_aci(tmp_path: Path, compress: list[str] | None) -> Path:
    """An ACI padded with zeros past the bound, maybe compressed."""
    body = rawtar.member(b"manifest", b'{"acKind": "ImageManifest", "name": "example.com/x"}') \
        + rawtar.header(b"rootfs/", typeflag=b"5") + rawtar.END
    data = body + bytes(TRAILING_MAX + (1 << 20))
    aci = tmp_path / "image.aci"
    aci.write_bytes(subprocess.run(compress, input=data, capture_output=True,
                                   check=True).stdout if compress else data)
    return aci


def test_a_plain_tar_is_not_read_past_its_end_marker(tmp_path: Path) -> None:
    """Nothing to decompress, nothing to drain: padding of any length is fine."""
    tar = tmp_path / "t.tar"
    with open(tar, "wb") as out:
        out.write(rawtar.member(b"a", b"1") + rawtar.END)
        out.truncate(out.tell() + TRAILING_MAX + (1 << 20))  # sparse
    assert (ours(tar, tmp_path / "out") / "a").read_bytes() == b"1"
    image_id, _manifest = identify(str(padded_aci(tmp_path, None)))  # acigen run hashes it all
    assert image_id.startswith("sha512-")


# -- members the extractor skips ---------------------------------------------

TIB = 1 << 40


def base256(value: int) -> bytes:
    """A size field too big for octal, as GNU tar writes it."""
    return b"\x80" + value.to_bytes(11, "big")


def sparse_archive(path: Path, head: bytes, tail: bytes) -> Path:
    """HEAD, a terabyte of zeros (sparse: it costs no disk, but reading it
    costs minutes), then TAIL."""
    with open(path, "wb") as out:
        out.write(head)
        out.truncate(out.tell() + TIB)
        out.seek(0, os.SEEK_END)
        out.write(tail)
    return path


SKIPPED = {  # what the extractor never writes: an ACI's manifest and a GNU dumpdir's listing
    "aci-manifest": (rawtar.header(b"manifest", size=base256(TIB)),
                     rawtar.header(b"rootfs/", typeflag=b"5") + rawtar.END),
    "dumpdir": (rawtar.header(b"dir/", typeflag=b"D", size=base256(TIB)), rawtar.END),
}


@pytest.mark.parametrize("max_size, kind, message", [
    (None, "aci-manifest", "member 'manifest': an ACI's manifest is over 1 MiB"),
    (1 << 20, "aci-manifest", "member 'manifest': the archive holds more than max_size "
                              "(1048576 bytes, uncompressed)"),
    (None, "dumpdir", f"member 'dir/': its dumpdir listing is {TIB} bytes long, more than "
                      "we accept"),
])
def test_a_skipped_member_is_not_read_unbounded(tmp_path: Path, max_size: int | None,
                                                kind: str, message: str) -> None:
    """Its data is skipped, not written, so no full disk stops the read: a
    bound does, before the first byte of it (a terabyte here: minutes of reading)."""
    archive = sparse_archive(tmp_path / "skipped.tar", *SKIPPED[kind])
    limit = [] if max_size is None else ["--max-size", str(max_size)]
    result = run_helper("unpack", *limit, str(archive), str(tmp_path / "out"), timeout=60)
    assert result.returncode == 1
    assert error_lines(result) == [f"acigen-unpack: error: {message}"]


def test_a_skipped_device_node_reads_no_data_whatever_its_size(tmp_path: Path) -> None:
    """A device node is followed by no data, whatever its size field says
    (as Python's tarfile reads it): skipping one reads nothing."""
    device = rawtar.header(b"dev/null", typeflag=b"3", size=base256(TIB),
                           devmajor=rawtar.octal(1, 8), devminor=rawtar.octal(3, 8))
    archive = sparse_archive(tmp_path / "dev.tar",
                             device + rawtar.member(b"after", b"x") + rawtar.END, b"")
    result = run_helper("unpack", "--devices", "skip", str(archive), str(tmp_path / "out"),
                        timeout=60)
    assert result.returncode == 0, result.stderr
    assert "1 entries, 0.0 MB, 1 device nodes skipped" in result.stdout
    assert os.listdir(tmp_path / "out") == ["after"]
