"""acigen-pack by hand: real trees, real images, checked by actool and GNU tar."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from acigen.helpers.tar.chunks import ChunkedCompressor, ChunkPolicy
from acigen.helpers.tar.writer import DIRECTORY, REGULAR, Entry, write_end, write_entry
from tests.pack.run import decompress, image_id_of, pack_tree
from tests.pack.trees import (
    EPOCH,
    MANIFEST,
    describe,
    extract,
    special_tree,
    text,
    text_tree,
    write_manifest,
)
from tests.support.rootfs import debian_minbase_tree
from tests.support.tools import validate_aci

COMPRESSIONS = ["none", "gzip", "bzip2", "xz"]


@pytest.fixture(scope="module")
def special(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return special_tree(tmp_path_factory.mktemp("special") / "tree")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_manifest(tmp_path_factory.mktemp("manifest") / "manifest.json")


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return debian_minbase_tree(tmp_path_factory.mktemp("debian") / "tree")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_images_are_valid_and_their_id_is_the_tar_hash(
        compression: str, special: Path, manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "image.aci"
    # small chunks: the 6 MiB file and the rest make many of them
    packed = pack_tree(special, manifest, out, "-C", compression, "--chunk-size", "0.5",
                       "--source-date-epoch", str(EPOCH))
    assert packed.chunks > 5
    validate_aci(out)
    tar = decompress(out)
    assert image_id_of(tar) == packed.image_id
    assert (tmp_path / "image.aci.id").read_text() == packed.image_id + "\n"
    plain = pack_tree(special, manifest, tmp_path / "plain.aci", "-C", "none",
                      "--source-date-epoch", str(EPOCH))
    assert (tmp_path / "plain.aci").read_bytes() == tar
    assert plain.image_id == packed.image_id
    assert sorted(os.listdir(tmp_path)) == ["image.aci", "image.aci.id", "plain.aci",
                                            "plain.aci.id"]  # no temporary file left


def test_members_manifest_then_rootfs_then_sorted(special: Path, manifest: Path,
                                                  tmp_path: Path) -> None:
    pack_tree(special, manifest, tmp_path / "i.aci", "-C", "none",
              "--source-date-epoch", str(EPOCH))
    with tarfile.open(tmp_path / "i.aci", encoding="utf-8", errors="surrogateescape") as tar:
        members = tar.getmembers()
    first, root = members[:2]
    assert (first.name, first.type, first.mode, first.uid, first.gid, first.mtime) == (
        "manifest", tarfile.REGTYPE, 0o644, 0, 0, EPOCH)
    assert (root.name, root.type) == ("rootfs", tarfile.DIRTYPE)
    assert all(m.name.startswith("rootfs/") for m in members[2:])
    assert all(m.uname == "" and m.gname == "" for m in members)
    names = [m.name for m in members[1:]]
    assert len(names) == len(set(names))
    assert "rootfs/tmp/sock" not in names
    with tarfile.open(tmp_path / "i.aci") as tar:
        data = tar.extractfile("manifest").read()  # type: ignore[union-attr]
    assert data == (json.dumps(MANIFEST, indent=2) + "\n").encode()


def test_gnu_tar_extracts_exactly_the_tree(special: Path, manifest: Path,
                                           tmp_path: Path) -> None:
    pack_tree(special, manifest, tmp_path / "i.aci", "-C", "xz", "--source-date-epoch",
              str(EPOCH), "--chunk-size", "1")
    rootfs = extract(tmp_path / "i.aci", tmp_path / "x") / "rootfs"
    want, want_links = describe(special, EPOCH)
    got, got_links = describe(rootfs)
    assert sorted(got) == sorted(want)
    for path, node in want.items():
        assert got[path] == node, path
    assert got_links == want_links == [{b"data/links/one", b"data/links/two", b"data/three"}]
    # what the tree holds, spelled out, so the comparison cannot pass vacuously
    assert got[b"bin/su"].mode == 0o4755 and got[b"tmp"].mode == 0o1777
    assert got[b"srv/shared"].mode == 0o2775 and got[b"srv/shared"].gid == 50
    assert dict(got[b"bin/ping"].xattrs)["security.capability"]
    assert dict(got[b"home/user/notes"].xattrs)["user.comment"] == b"bin\0ary\nvalue\xff"
    assert (got[b"home/big/ids"].uid, got[b"home/big/ids"].gid) == (3_000_000, 4_000_000)
    assert got[b"dev/big"].content == "250,1000000" and got[b"dev/fifo"].kind == "fifo"
    assert got[b"etc/new"].mtime == EPOCH and got[b"etc"].mtime == EPOCH
    assert got[b"etc/empty"].mtime < EPOCH
    assert got[b"data/large"].kind == "file"
    assert os.path.getsize(rootfs / "data/large") > 6 * 1024 * 1024


def test_same_tree_same_bytes_and_the_epoch_counts(special: Path, manifest: Path,
                                                   tmp_path: Path) -> None:
    first = pack_tree(special, manifest, tmp_path / "a.aci", "-C", "gzip",
                      "--chunk-cache", tmp_path / "cache-a")
    second = pack_tree(special, manifest, tmp_path / "b.aci", "-C", "gzip",
                       "--chunk-cache", tmp_path / "cache-b", "-j", "1")
    assert (tmp_path / "a.aci").read_bytes() == (tmp_path / "b.aci").read_bytes()
    assert first.image_id == second.image_id
    assert first.reused == second.reused == 0
    later = pack_tree(special, manifest, tmp_path / "c.aci", "-C", "gzip",
                      "--source-date-epoch", str(EPOCH))
    assert later.image_id != first.image_id


def test_source_date_epoch_from_the_environment(special: Path, manifest: Path,
                                                tmp_path: Path, monkeypatch) -> None:
    given = pack_tree(special, manifest, tmp_path / "a.aci", "--source-date-epoch", str(EPOCH))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    from_env = pack_tree(special, manifest, tmp_path / "b.aci")
    assert given.image_id == from_env.image_id


@pytest.mark.parametrize("compression", ["gzip", "xz"])
def test_one_changed_file_reuses_the_other_chunks(compression: str, manifest: Path,
                                                  tmp_path: Path) -> None:
    tree = text_tree(tmp_path / "tree", files=200, size=15_000)
    cache = tmp_path / "cache"
    options = ["-C", compression, "--chunk-size", "0.25"]
    full = pack_tree(tree, manifest, tmp_path / "i.aci", *options, "--chunk-cache", cache)
    assert full.chunks > 10 and full.reused == 0
    with open(tree / "d3" / "f00101", "ab") as f:
        f.write(b"one more line\n")
    again = pack_tree(tree, manifest, tmp_path / "i.aci", *options, "--chunk-cache", cache)
    assert again.image_id != full.image_id
    assert again.chunks - again.reused <= 2
    clean = pack_tree(tree, manifest, tmp_path / "clean.aci", *options)
    assert clean.reused == 0
    assert (tmp_path / "i.aci").read_bytes() == (tmp_path / "clean.aci").read_bytes()
    validate_aci(tmp_path / "i.aci")


def test_the_cache_keeps_only_what_the_last_pack_used(manifest: Path, tmp_path: Path) -> None:
    tree = text_tree(tmp_path / "tree", files=100, size=20_000)
    cache = tmp_path / "cache"

    def chunks() -> set[str]:
        return {p.name for p in cache.iterdir() if p.name not in ("lock", "uses")}

    first = pack_tree(tree, manifest, tmp_path / "i.aci", "--chunk-size", "0.25",
                      "--chunk-cache", cache)
    assert len(chunks()) == first.chunks
    (tree / "d1" / "f00001").write_bytes(b"changed")
    again = pack_tree(tree, manifest, tmp_path / "i.aci", "--chunk-size", "0.25",
                      "--chunk-cache", cache)
    assert len(chunks()) == again.chunks  # the replaced chunks are gone


def test_a_debian_root_round_trips(debian: Path, manifest: Path, tmp_path: Path) -> None:
    """A real root at the default chunk size; the one-file change of issue 9."""
    cache = tmp_path / "cache"
    full = pack_tree(debian, manifest, tmp_path / "deb.aci", "--chunk-cache", cache)
    validate_aci(tmp_path / "deb.aci")
    assert full.chunks > 20
    tar = decompress(tmp_path / "deb.aci")
    assert image_id_of(tar) == full.image_id
    rootfs = extract(tmp_path / "deb.aci", tmp_path / "x") / "rootfs"
    want, want_links = describe(debian, 0)
    got, got_links = describe(rootfs)
    assert got == want and got_links == want_links
    shutil.rmtree(tmp_path / "x")
    with open(debian / "etc" / "debian_version", "a") as f:
        f.write("changed\n")
    again = pack_tree(debian, manifest, tmp_path / "deb.aci", "--chunk-cache", cache)
    assert again.chunks - again.reused <= 2, again
    pack_tree(debian, manifest, tmp_path / "clean.aci")
    assert (tmp_path / "deb.aci").read_bytes() == (tmp_path / "clean.aci").read_bytes()


def test_pack_reads_the_tree_and_writes_only_the_image(special: Path, manifest: Path,
                                                       tmp_path: Path) -> None:
    before = describe(special)
    pack_tree(special, manifest, tmp_path / "out" / "i.aci", "--chunk-cache",
              tmp_path / "cache")
    assert describe(special) == before
    assert sorted(os.listdir(tmp_path / "out")) == ["i.aci", "i.aci.id"]


def _chunked_image(path: Path, compression: str, last: bytes) -> int:
    """manifest, rootfs/, many files, then an entry named LAST: many chunks."""
    manifest = (json.dumps(MANIFEST) + "\n").encode()
    with open(path, "wb") as out, ChunkedCompressor(
            out, compression, None, 2, ChunkPolicy.for_average(64 * 1024)) as cc:
        write_entry(cc, Entry(b"manifest", REGULAR, 0o644, 0, 0, 0, len(manifest)), manifest)
        write_entry(cc, Entry(b"rootfs/", DIRECTORY, 0o755, 0, 0, 0))
        for i in range(100):
            data = text(i, 10_000)
            write_entry(cc, Entry(b"rootfs/f%d" % i, REGULAR, 0o644, 0, 0, 0, len(data)), data)
        write_entry(cc, Entry(last, REGULAR, 0o644, 0, 0, 0))
        write_end(cc)
        return cc.close().chunks


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz"])
def test_actool_reads_every_chunk(compression: str, tmp_path: Path) -> None:
    """An entry outside rootfs/ in the last chunk must be seen: actool reads
    past the first gzip member / bzip2 or xz stream, not just the first."""
    assert _chunked_image(tmp_path / "good.aci", compression, b"rootfs/last") > 5
    validate_aci(tmp_path / "good.aci")
    _chunked_image(tmp_path / "bad.aci", compression, b"outside")
    with pytest.raises(AssertionError, match="outside"):
        validate_aci(tmp_path / "bad.aci")
