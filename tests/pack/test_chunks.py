"""The chunked compressor and its cache, on streams made up here."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import zlib
from pathlib import Path

import pytest

from acigen.helpers.tar.chunks import (
    ChunkCache,
    ChunkedCompressor,
    ChunkedResult,
    ChunkPolicy,
    codec,
)
from tests.pack.trees import text

KiB = 1024
POLICY = ChunkPolicy.for_average(64 * KiB)
TOOLS = {"gzip": "gzip", "bzip2": "bzip2", "xz": "xz"}


def entries(count: int = 200, seed: int = 0) -> list[tuple[bytes, bytes]]:
    """(header, data) pairs: a stand-in for a tar stream's entries."""
    return [(b"entry %d" % i, text(seed * 10_000 + i, 500 + (i * 7919) % 6000))
            for i in range(count)]


def compress(out: Path, items: list[tuple[bytes, bytes]], compression: str = "gzip",
             cache: ChunkCache | None = None, policy: ChunkPolicy = POLICY,
             jobs: int = 3, **options: object) -> ChunkedResult:
    with open(out, "wb") as f, ChunkedCompressor(f, compression, cache, jobs, policy,
                                                 **options) as cc:  # type: ignore[arg-type]
        for key, data in items:
            cc.mark(key)
            cc.write(key)
            cc.write(data)
        return cc.close()


def raw(items: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(key + data for key, data in items)


def gzip_members(blob: bytes) -> list[int]:
    """Uncompressed size of each gzip member, in order."""
    sizes = []
    while blob:
        member = zlib.decompressobj(31)
        sizes.append(len(member.decompress(blob)))
        assert member.eof
        blob = member.unused_data
    return sizes


@pytest.mark.parametrize("compression", ["none", "gzip", "bzip2", "xz"])
def test_chunks_decompress_as_one_stream(compression: str, tmp_path: Path) -> None:
    items = entries()
    result = compress(tmp_path / "out", items, compression, compressed_digest="sha256",
                      digests=("sha512", "sha256"))
    blob = (tmp_path / "out").read_bytes()
    if compression == "none":
        assert blob == raw(items)
    else:
        plain = subprocess.run([TOOLS[compression], "-dc"], input=blob, check=True,
                               capture_output=True).stdout
        assert plain == raw(items)
    assert result.chunks > 3
    assert result.size == len(raw(items))
    assert result.digests == {"sha512": hashlib.sha512(raw(items)).hexdigest(),
                              "sha256": hashlib.sha256(raw(items)).hexdigest()}
    assert result.compressed_size == len(blob)
    assert result.compressed_digest == hashlib.sha256(blob).hexdigest()


def test_gzip_members_have_fixed_headers(tmp_path: Path) -> None:
    compress(tmp_path / "out", entries())
    blob = (tmp_path / "out").read_bytes()
    # no name, mtime 0, XFL 0, OS unix: what `gzip -5 -n` writes
    assert blob[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
    assert blob.count(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03") >= len(gzip_members(blob))


def test_chunk_sizes_stay_within_the_policy(tmp_path: Path) -> None:
    items = entries(400)
    items.insert(100, (b"big file", text(99, 20 * POLICY.max_size)))  # cut inside it too
    compress(tmp_path / "out", items)
    sizes = gzip_members((tmp_path / "out").read_bytes())
    assert sum(sizes) == len(raw(items))
    assert all(POLICY.min_size <= size <= POLICY.max_size for size in sizes[:-1]), sizes
    assert len(sizes) > 20


def test_a_stream_without_marks_is_cut_at_the_maximum(tmp_path: Path) -> None:
    data = text(5, 10 * POLICY.max_size)
    with open(tmp_path / "out", "wb") as f, ChunkedCompressor(f, "gzip", None, 2, POLICY) as cc:
        cc.write(data)
        cc.close()
    sizes = gzip_members((tmp_path / "out").read_bytes())
    assert sum(sizes) == len(data)
    assert max(sizes) <= POLICY.max_size


def test_same_input_same_bytes_cached_or_not(tmp_path: Path) -> None:
    items = entries()
    compress(tmp_path / "a", items, "xz", ChunkCache(str(tmp_path / "cache-a")))
    compress(tmp_path / "b", items, "xz", ChunkCache(str(tmp_path / "cache-b")), jobs=1)
    warm = compress(tmp_path / "c", items, "xz", ChunkCache(str(tmp_path / "cache-a")))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() \
        == (tmp_path / "c").read_bytes()
    assert warm.reused == warm.chunks


@pytest.mark.parametrize("change", ["same size", "grows", "new entry", "entry removed"])
def test_a_change_renews_only_the_chunks_around_it(change: str, tmp_path: Path) -> None:
    items = entries(600)
    cache = ChunkCache(str(tmp_path / "cache"))
    first = compress(tmp_path / "first", items, "bzip2", cache)
    changed = list(items)
    key, data = changed[300]
    if change == "same size":
        changed[300] = (key, data[:-5] + b"XXXXX")
    elif change == "grows":
        changed[300] = (key + b" bigger", data + text(1, 3000))
    elif change == "new entry":
        changed.insert(300, (b"new entry", text(2, 2000)))
    else:
        del changed[300]
    again = compress(tmp_path / "again", changed, "bzip2", cache)
    assert first.chunks > 15
    assert again.chunks - again.reused <= 2, (again.chunks, again.reused)
    assert again.reused >= again.chunks - 2
    clean = compress(tmp_path / "clean", changed, "bzip2", ChunkCache(str(tmp_path / "c2")))
    assert clean.reused == 0
    assert (tmp_path / "again").read_bytes() == (tmp_path / "clean").read_bytes()


def test_an_empty_stream(tmp_path: Path) -> None:
    result = compress(tmp_path / "out", [], "xz")
    assert (result.size, result.compressed_size, result.chunks) == (0, 0, 0)
    assert result.digests["sha512"] == hashlib.sha512(b"").hexdigest()


def test_codec_tags_name_settings_and_library_output() -> None:
    tags = {name: codec(name).tag for name in ("gzip", "bzip2", "xz")}
    assert tags["gzip"].startswith("gz5-") and tags["xz"].startswith("xz6-")
    assert len(set(tags.values())) == 3
    with pytest.raises(ValueError, match="unknown compression"):
        codec("zstd")


# -- the cache's bounds --------------------------------------------------------------

def cached(cache_dir: Path) -> set[str]:
    return {p.name for p in cache_dir.iterdir() if p.name not in ("lock", "uses")}


def test_collect_keeps_what_the_last_pack_of_each_output_used(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "cache"))
    out_a, out_b = tmp_path / "a.aci", tmp_path / "b.aci"
    with cache.in_use():
        a1 = compress(out_a, entries(300, seed=1), cache=cache)
        cache.record(str(out_a), a1.names)
        b1 = compress(out_b, entries(300, seed=2), cache=cache)
        cache.record(str(out_b), b1.names)
        assert cache.collect() == 0
        a2 = compress(out_a, entries(300, seed=3), cache=cache)
        cache.record(str(out_a), a2.names)
        assert cache.collect() == len(set(a1.names) - set(a2.names)) > 0
    assert cached(tmp_path / "cache") == set(a2.names) | set(b1.names)
    out_b.unlink()  # an output that is gone frees its chunks
    with cache.in_use():
        cache.collect()
    assert cached(tmp_path / "cache") == set(a2.names)


def test_collect_waits_for_other_packs(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "cache"))
    other = ChunkCache(str(tmp_path / "cache"))
    with cache.in_use():
        compress(tmp_path / "a.aci", entries(100), cache=cache)  # not recorded: garbage
        with other.in_use():
            assert cache.collect() == -1  # the other pack may still list these chunks
        assert len(cached(tmp_path / "cache")) > 0
        assert cache.collect() > 0
    assert cached(tmp_path / "cache") == set()


def test_an_aborted_stream_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = ChunkCache(str(tmp_path / "cache"))
    before = threading.active_count()
    with cache.in_use(), pytest.raises(KeyboardInterrupt), \
            open(tmp_path / "out", "wb") as f, \
            ChunkedCompressor(f, "xz", cache, 2, POLICY) as cc:
        for key, data in entries(100):
            cc.mark(key)
            cc.write(data)
        raise KeyboardInterrupt
    assert not [p for p in os.listdir(tmp_path / "cache") if p.startswith(".tmp-")]
    assert threading.active_count() == before  # every worker thread has ended


# -- what the ACI and the OCI archive share (issue 19) ------------------------------------

def compress_tree(out: Path, items: list[tuple[bytes, bytes]], prefix: bytes,
                  cache: ChunkCache, compression: str = "gzip",
                  policy: ChunkPolicy = POLICY) -> ChunkedResult:
    """ITEMS as TreeWriter writes them: a header naming PREFIX + name, then the data
    announced by isolate()."""
    with open(out, "wb") as f, ChunkedCompressor(f, compression, cache, 2, policy) as cc:
        for name, data in items:
            head = b"header of " + prefix + name
            cc.mark(head)
            cc.write(head)
            cc.isolate(len(data))
            cc.write(data)
        return cc.close()


def test_a_big_file_gives_the_same_chunks_under_another_name(tmp_path: Path) -> None:
    from acigen.helpers.tar.chunks import ISOLATE_MIN
    small = [(b"small %d" % i, text(i, 3000)) for i in range(60)]
    items = [*small[:30], (b"big", text(99, ISOLATE_MIN + 5 * POLICY.max_size)), *small[30:]]
    cache = ChunkCache(str(tmp_path / "cache"))
    aci = compress_tree(tmp_path / "aci", items, b"rootfs/", cache)
    oci = compress_tree(tmp_path / "oci", items, b"", cache)
    # the big file's chunks come from the cache; the ones holding headers cannot
    shared = set(aci.names) & set(oci.names)
    assert oci.reused == len(shared) >= 5
    assert sum(gzip_members((tmp_path / "oci").read_bytes())) == oci.size
    # and its data starts a chunk: cut off from the header before it
    names = [b"header of " + name for name, _ in items]
    sizes = gzip_members((tmp_path / "oci").read_bytes())
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    big_start = len(raw([(b"header of " + n, d) for n, d in small[:30]])) + len(names[30])
    assert big_start in offsets


def test_only_gzip_cuts_at_big_files(tmp_path: Path) -> None:
    from acigen.helpers.tar.chunks import ISOLATE_MIN
    items = [(b"a", text(1, 3000)), (b"big", text(2, ISOLATE_MIN)), (b"b", text(3, 3000))]
    one_chunk = ChunkPolicy.for_average(16 * ISOLATE_MIN)
    for compression, chunks in (("xz", 1), ("gzip", 3)):
        result = compress_tree(tmp_path / "out", items, b"", ChunkCache(str(tmp_path / "c")),
                               compression, one_chunk)
        assert result.chunks == chunks, compression


def test_a_chunk_being_made_elsewhere_is_waited_for(tmp_path: Path) -> None:
    """Another pack holds the claim on a chunk: this one waits, then reuses it."""
    items = [(b"only entry", text(5, 4000))]
    cache = ChunkCache(str(tmp_path / "cache"))
    reference = compress(tmp_path / "reference", items, cache=ChunkCache(str(tmp_path / "r")))
    (name,) = reference.names
    results: list[ChunkedResult] = []
    with cache.claim(name):
        waiter = threading.Thread(
            target=lambda: results.append(compress(tmp_path / "out", items, cache=cache)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()  # blocked on the claim
        blob = (tmp_path / "reference").read_bytes()
        cache.store(name, blob)
    waiter.join(10)
    assert results[0].reused == 1
    assert (tmp_path / "out").read_bytes() == blob
    assert not [p for p in os.listdir(cache.path) if p.endswith(".claim")]


# -- xz: small chunks outside usr/ (issue 19) -------------------------------------------

def xz_streams(blob: bytes) -> list[int]:
    """Uncompressed size of each xz stream, in order."""
    import lzma
    sizes = []
    while blob:
        stream = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        sizes.append(len(stream.decompress(blob)))
        assert stream.eof
        blob = stream.unused_data
    return sizes


def rootfs_items(edit: bytes = b"") -> list[tuple[bytes, bytes]]:
    """(tar header, data) of a small ACI tree: etc/ and var/ around a bigger usr/."""
    from acigen.helpers.tar.writer import DIRECTORY, REGULAR, Entry, header
    items = []
    for top, count, size in ((b"etc", 10, 8 * KiB), (b"usr", 40, 30 * KiB),
                             (b"var", 10, 8 * KiB)):
        items.append((header(Entry(b"rootfs/%s/" % top, DIRECTORY, 0o755, 0, 0, 0)), b""))
        for i in range(count):
            data = text(len(items), size) + (edit if top == b"etc" and i == 3 else b"")
            data += bytes(-len(data) % 512)
            name = b"rootfs/%s/%s" % (top, b"long-" * 30 if i == 5 else b"f%d" % i)
            items.append((header(Entry(name, REGULAR, 0o644, 0, 0, 0, len(data))), data))
    return items


def test_in_bulk_reads_the_name_of_a_tar_header() -> None:
    from acigen.helpers.tar.chunks import in_bulk
    from acigen.helpers.tar.writer import REGULAR, Entry, header

    def head(name: bytes) -> bytes:
        return header(Entry(name, REGULAR, 0o644, 0, 0, 0))
    assert in_bulk(head(b"usr/bin/ls")) and in_bulk(head(b"rootfs/usr/"))
    assert in_bulk(head(b"rootfs/usr/" + b"d/" * 70 + b"x"))  # ustar prefix field
    assert in_bulk(head(b"rootfs/usr/" + b"x" * 300))  # a pax header's path
    assert not in_bulk(head(b"rootfs/etc/usr/x")) and not in_bulk(head(b"rootfs/usrx"))
    assert not in_bulk(head(b"manifest")) and not in_bulk(bytes(1024))


def test_xz_cuts_small_chunks_outside_usr(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit in etc/ recompresses one small chunk; usr/ and var/ each start one."""
    from acigen.helpers.tar import chunks
    monkeypatch.setitem(chunks.NEAR_AVERAGE, "xz", 64 * KiB)  # 4 MiB, scaled down
    bulk = ChunkPolicy.for_average(512 * KiB)
    cache = ChunkCache(str(tmp_path / "cache"))
    items = rootfs_items()
    compress(tmp_path / "first", items, "xz", cache, bulk)
    sizes = xz_streams((tmp_path / "first").read_bytes())
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    usr, var = (len(raw(items[:i])) for i, (key, _) in enumerate(items)
                if key[:100].rstrip(b"\0") in (b"rootfs/usr/", b"rootfs/var/"))
    assert usr in starts and var in starts  # each region starts a chunk
    near_max = ChunkPolicy.for_average(64 * KiB).max_size
    outside = [size for start, size in zip(starts, sizes, strict=True)
               if not usr <= start < var]
    assert max(outside) <= near_max < max(sizes)
    again = compress(tmp_path / "again", rootfs_items(edit=b"edited\n"), "xz", cache, bulk)
    assert again.chunks - again.reused == 1
    assert sum(xz_streams((tmp_path / "again").read_bytes())) == again.size
    # without the rule, etc/ shares a bulk-sized chunk with usr/
    monkeypatch.delitem(chunks.NEAR_AVERAGE, "xz")
    compress(tmp_path / "plain", items, "xz", None, bulk)
    assert xz_streams((tmp_path / "plain").read_bytes())[0] > near_max


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz"])
def test_only_a_chunk_as_acigen_compresses_it_is_taken_from_elsewhere(compression: str) -> None:
    """ChunkCache.offer's check (chunks from a cache repository are not trusted)."""
    chunk, coder = text(3, 200 * KiB), codec(compression)
    blob = coder.compress(chunk)
    assert coder.holds(blob, chunk) and coder.holds(memoryview(blob), chunk)
    other = coder.compress(chunk + b"x")
    split = coder.compress(chunk[:100]) + coder.compress(chunk[100:])  # same bytes, two streams
    for wrong in (other, split, blob + b"\0", blob + blob, blob[:-1], blob[:1], b"", b"junk"):
        assert not coder.holds(wrong, chunk)
    assert not coder.holds(blob, chunk[:-1])  # more than the chunk: never expanded past it


def test_offered_chunks_are_used_when_they_hold_the_chunk_and_reported_when_not(
        tmp_path: Path) -> None:
    items = entries()
    clean = compress(tmp_path / "clean", items)
    data = (tmp_path / "clean").read_bytes()
    offered, at = {}, 0
    for name, size in zip(clean.names, clean.blob_sizes, strict=True):
        offered[name] = data[at:at + size]
        at += size
    first = clean.names[0]
    cache = ChunkCache(str(tmp_path / "cache"))
    cache.offer({**offered, first: codec("gzip").compress(b"not it")}, "REPO:TAG")
    shared = compress(tmp_path / "shared", items, cache=cache)
    assert (tmp_path / "shared").read_bytes() == data
    assert shared.shared == shared.reused == shared.chunks - 1
    assert cache.rejected == [first] and "1 chunk(s) from REPO:TAG" in cache.damage_report()
