"""gzip members that say their length (helpers/tar/gzipmembers.py): the form of
the layers acigen pushes to its cache repository, inflated on two threads."""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.tar import gzipmembers
from acigen.helpers.unpack.image import unpack_archive
from tests.image.treediff import describe, differences


def tar_bytes(tree: Path) -> bytes:
    return subprocess.run(["tar", "-C", str(tree), "--sort=name", "-cf", "-", "."],
                          capture_output=True, check=True).stdout


def in_members(data: bytes) -> bytes:
    """DATA as MemberWriter writes it."""
    out = io.BytesIO()
    writer = gzipmembers.MemberWriter(out)
    for at in range(0, len(data), 1000):  # written in pieces that do not fit members
        writer.write(data[at:at + 1000])
    writer.close()
    return out.getvalue()


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tree whose tar is some 500 KB: members of 64 KiB make several."""
    import random
    rng = random.Random(7)
    tree = tmp_path_factory.mktemp("members") / "tree"
    for number in range(40):
        path = tree / f"d{number % 5}" / f"f{number}"
        path.parent.mkdir(parents=True, exist_ok=True)
        words = [str(rng.randrange(10**6)) for _ in range(2000)]
        path.write_text(" ".join(words))
    (tree / "d0" / "link").symlink_to("f0")
    return tree


@pytest.fixture
def small_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gzipmembers, "MEMBER_SIZE", 64 << 10)


def test_members_unpack_as_the_plain_archive_does(features: Path, tmp_path: Path,
                                                  small_members: None) -> None:
    data = tar_bytes(features)
    blob = in_members(data)
    assert gzip.decompress(blob) == data  # any gzip reader reads every member
    archive = tmp_path / "layer.tar.gz"
    archive.write_bytes(blob)
    with open(archive, "rb") as src:
        assert gzipmembers.has_lengths(src.fileno())
        found = list(gzipmembers.spans(src.fileno(), len(blob)))
    assert len(found) == -(-len(data) // (64 << 10)) > 2
    assert sum(length for _at, length in found) == len(blob)
    (tmp_path / "out").mkdir()
    unpack_archive(str(archive), str(tmp_path / "out"), "keep")
    plain = tmp_path / "plain.tar"
    plain.write_bytes(data)
    (tmp_path / "ref").mkdir()
    unpack_archive(str(plain), str(tmp_path / "ref"), "keep")
    assert differences(describe(str(tmp_path / "ref")), describe(str(tmp_path / "out"))) == []


def test_a_gzip_file_without_lengths_is_one_stream(tmp_path: Path) -> None:
    archive = tmp_path / "other.gz"
    archive.write_bytes(gzip.compress(b"x" * 100_000) + gzip.compress(b"y"))
    with open(archive, "rb") as src:
        assert not gzipmembers.has_lengths(src.fileno())


def test_an_empty_stream_is_one_empty_member() -> None:
    out = io.BytesIO()
    gzipmembers.MemberWriter(out).close()
    assert gzip.decompress(out.getvalue()) == b""


def _lie_about_length(blob: bytes, member: int, delta: int) -> bytes:
    """BLOB with the length field of its MEMBER-th member changed by DELTA."""
    at = 0
    for _ in range(member):
        at += struct.unpack("<Q", blob[at + gzipmembers.HEADER_SIZE - 8:
                                       at + gzipmembers.HEADER_SIZE])[0]
    field = at + gzipmembers.HEADER_SIZE - 8
    length = struct.unpack("<Q", blob[field:field + 8])[0]
    return blob[:field] + struct.pack("<Q", length + delta) + blob[field + 8:]


def _bomb(_data: bytes) -> bytes:
    """One member that says its length and inflates past what a member holds."""
    return gzipmembers.member(bytes(gzipmembers.MEMBER_SIZE + 1))


def _tiny_members(data: bytes) -> bytes:
    """Members far smaller than MEMBER_SIZE: a million of them would cost a
    million reads; the second one already stops the reader."""
    return b"".join(gzipmembers.member(data[at:at + 100]) for at in range(0, len(data), 100))


def _stored_blocks(_data: bytes) -> bytes:
    """One member longer than MEMBER_SIZE bytes can compress to (empty stored
    deflate blocks pad it): refused before it is read."""
    body = b"\x00\x00\x00\xff\xff" * (gzipmembers.MEMBER_SIZE // 4) + b"\x03\x00"
    total = gzipmembers.HEADER_SIZE + len(body) + 8
    head = gzipmembers.member(b"")[:gzipmembers.HEADER_SIZE - 8] + struct.pack("<Q", total)
    return head + body + struct.pack("<II", 0, 0)


@pytest.mark.parametrize("damage", [
    lambda blob: _lie_about_length(blob, 1, +1),          # runs into the next member
    lambda blob: _lie_about_length(blob, 2, -7),          # ends inside its own data
    lambda blob: _lie_about_length(blob, 0, 1 << 40),     # past the end of the file
    lambda blob: blob[:-5],                               # the last member cut short
    lambda blob: blob[:len(blob) // 2] + bytes([blob[len(blob) // 2] ^ 1])
    + blob[len(blob) // 2 + 1:],                          # a flipped bit
    _bomb, _tiny_members, _stored_blocks,
], ids=["overlapping", "short", "past-the-end", "truncated", "flipped-bit", "bomb",
        "tiny-members", "too-long"])
def test_members_that_do_not_add_up_are_one_error(features: Path, tmp_path: Path,
                                                  small_members: None, damage) -> None:
    archive = tmp_path / "layer.tar.gz"
    archive.write_bytes(damage(in_members(tar_bytes(features))))
    (tmp_path / "out").mkdir()
    with pytest.raises(HelperError, match=r"cannot decompress the archive|truncated") as caught:
        unpack_archive(str(archive), str(tmp_path / "out"), "keep")
    assert "\n" not in str(caught.value)
