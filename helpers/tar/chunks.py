"""Chunked, parallel, cached compression of one byte stream.

The stream is cut into chunks of a few MiB at points chosen by content;
each chunk is compressed on its own (a gzip member, an xz stream, a bzip2
stream) and the results are concatenated, which every reader of these
formats accepts as one stream.  A compressed chunk is kept in a cache keyed
by the hash of its uncompressed bytes and the compression settings, so a
stream that changed in one place recompresses only the chunks around the
change, and a clean build gives the same bytes as an incremental one.

Usage (the ACI pack; the OCI layers too)::

    with ChunkedCompressor(out_file, "xz", cache, jobs=4) as cc:
        for each entry:
            cc.mark(entry_header)   # an entry starts here: a cut may go here
            cc.write(entry_header)
            cc.write(entry_data)
        result = cc.close()         # digests, sizes, chunk and reuse counts

Where the cuts go: only at candidates -- each `mark()`, and inside a long
run of data (a big file) every `policy.run` bytes after the last candidate.
A candidate cuts when the chunk has at least `min_size` bytes and a hash of
its key (the entry's header; for a point inside a file, the header and the
offset) falls below run/mean_extra, where run is the number of bytes since
the previous candidate; so cuts come at about one per `mean_extra` bytes
past the minimum however big the entries are.  The decision depends on the
key and the bytes since the previous candidate, not on where the chunk
started, so after a change the cuts fall back into the old places at the
next chosen candidate.  A chunk that would pass `max_size` is cut at the
next candidate regardless.  Cuts inside a file are at fixed offsets from
its header, not found by a rolling hash: that would cost a Python loop over
every byte, and a changed file is almost always rewritten whole anyway.
xz keeps two policies, big chunks in usr/ and small ones elsewhere, and
always cuts where the stream passes from one region to the other
(NEAR_AVERAGE, `in_bulk`).

Parallelism: threads.  zlib, lzma, bz2 and hashlib release the GIL while they
work, so threads use every core without copying chunks between processes
(bench/pack.py measures both).  A free thread takes the largest chunk
waiting (largest_first.py), so a big chunk cut late does not end the pack
on one core.  Memory stays bounded: at most 2 x jobs
times the largest chunk's bytes are in flight.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import fcntl
import hashlib
import lzma
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from acigen.fileio import atomic_write
from acigen.helpers.core.filelock import holding, lock_fd
from acigen.helpers.tar.largest_first import LargestFirstPool
from acigen.specs import COMPRESSIONS

MiB = 1 << 20
FORMAT_VERSION = "2"  # bump when the bytes we write for a chunk change
# A cached chunk file: this magic, the SHA-256 of the compressed bytes, then
# those bytes.  The digest is checked on every reuse: a damaged file (a
# full disk, a crash, a stray edit) is recompressed, never copied into an image.
CHUNK_MAGIC = b"acigen-chunk-1\n"
_HEAD = len(CHUNK_MAGIC) + 32
CLAIM = ".claim"  # NAME.claim: locked while chunk NAME is being made (ChunkCache.claim)


@dataclass(frozen=True)
class ChunkPolicy:
    """Where chunks are cut (see the module docstring)."""

    min_size: int
    mean_extra: int
    max_size: int
    run: int

    @classmethod
    def for_average(cls, average: int) -> ChunkPolicy:
        """Chunks of about AVERAGE bytes: three quarters a fixed minimum, the
        rest content-chosen, at most twice the average.  A high minimum keeps
        sizes even (no long last chunk that one core compresses alone) and
        still lets cuts fall back into place after one chunk (measured on a
        Debian tree: a one-file change renews one chunk)."""
        quarter = max(average // 4, 1024)
        return cls(min_size=3 * quarter, mean_extra=quarter, max_size=8 * quarter, run=quarter)


# Average chunk size per compression.  gzip's window is 32 KiB and bzip2's
# blocks 900 kB, so small chunks cost them nothing.  gzip's are 1 MiB: a
# one-file change then recompresses ~1 MiB, not 4 (bench/pack.py, Debian
# minbase: repack 0.52 s -> 0.42 s; the full pack's time and size unchanged;
# bzip2 keeps whole 900 kB blocks with 4 MiB).  xz (8 MiB dictionary at
# preset 6) loses ratio on small chunks -- on a Debian minbase tree, against
# `xz -T0 -6` (whose 24 MiB blocks restart too): +6% at 4 MiB, +3% at 8 MiB,
# +0.5% at 12 MiB -- while a one-file change recompresses about one chunk at
# ~3 MB/s.  So xz cuts big chunks in the bulk of a tree and small ones where
# a last step's edit usually lands (NEAR_AVERAGE); images built often can
# trade size for speed with a smaller chunk_size (bench/pack.py --chunk-size).
DEFAULT_AVERAGE = {"none": 4 * MiB, "gzip": 1 * MiB, "bzip2": 4 * MiB, "xz": 16 * MiB}
# Outside usr/ (an ACI's rootfs/usr/) -- etc/, var/, root/, opt/, srv/ --
# xz cuts chunks of this average, and a region's edge is always a cut, so an
# edit there recompresses at most a few MiB, not a whole bulk chunk (issue 19:
# the nginx example's xz rebuild spent ~5 s of its ~6.5 s compressing one 12
# MiB chunk for a file written to /etc).  These regions hold few bytes, so
# the image hardly grows; measured on the nginx example's root against
# `tar --sort=name -c | xz -T0 -6`: 1.013x with 12 MiB everywhere, 1.009x
# with 16 MiB in usr/ and 4 MiB outside (2 MiB outside: 1.012x; usr/local/
# made a region of its own too: +0.2%).  The rule reads only the entries'
# names: the same tree gives the same chunks on every machine.
NEAR_AVERAGE = {"xz": 4 * MiB}
BULK_DIR = b"usr/"  # under an ACI's rootfs/ too
# Files from this size on are chunks of their own with gzip (isolate()): on a
# Debian minbase root they hold 68% of the bytes.
ISOLATE_MIN = 64 * 1024


# -- codecs -----------------------------------------------------------------

# zlib's level for gzip.  Measured on a Debian root in 1 MiB chunks (issue 19),
# against level 6: level 5 takes 0.63x the CPU for 0.8% more bytes, level 4
# 0.48x for 2.4% more (past the pack row's 2% size target).  Faster deflate
# libraries were measured too and left out: python-isal (level 3: 0.08x the CPU,
# 10% larger) and zlib-ng (level 6: 0.39x, 3.6% larger) choose their code by the
# CPU's instruction set, and their output differs with it, so an image would
# not be the same bytes on every machine.
GZIP_LEVEL = 5


def _gzip_member(data: bytes) -> bytes:
    """One gzip member as `gzip -5 -n` writes it: no name, mtime 0, OS unix."""
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    body = deflate.compress(data) + deflate.flush()
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
    return head + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


# a compressed chunk's bytes back (at most the int given), None if it is not one
Expand = Callable[[bytes | memoryview, int], bytes | None]


def _gzip_expand(blob: bytes | memoryview, limit: int) -> bytes | None:
    """What one gzip member as _gzip_member writes holds (at most LIMIT bytes),
    or None when BLOB is not exactly such a member (header, body, trailer)."""
    if bytes(blob[:10]) != b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03":
        return None
    inflate = zlib.decompressobj(-15)
    data = inflate.decompress(blob[10:], limit + 1)
    if not inflate.eof or inflate.unconsumed_tail or len(data) > limit:
        return None
    if inflate.unused_data != struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF):
        return None
    return data


def _stream_expand(make: Callable[[], lzma.LZMADecompressor | bz2.BZ2Decompressor]
                   ) -> Expand:
    def expand(blob: bytes | memoryview, limit: int) -> bytes | None:
        try:
            decompressor = make()
            data = decompressor.decompress(blob, limit + 1)
        except (lzma.LZMAError, OSError, ValueError, EOFError):
            return None
        if not decompressor.eof or decompressor.unused_data or len(data) > limit:
            return None
        return data
    return expand


def _xz_stream(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=6)


def _bzip2_stream(data: bytes) -> bytes:
    return bz2.compress(data, 9)


_COMPRESSORS: dict[str, tuple[str, Callable[[bytes], bytes], Expand]] = {
    "gzip": (f"gz{GZIP_LEVEL}", _gzip_member, _gzip_expand),
    "bzip2": ("bz9", _bzip2_stream, _stream_expand(bz2.BZ2Decompressor)),
    "xz": ("xz6", _xz_stream,
           _stream_expand(lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ))),
}


def _no_expand(blob: bytes | memoryview, limit: int) -> bytes | None:
    return None


@dataclass(frozen=True)
class Codec:
    name: str
    compress: Callable[[bytes], bytes]
    tag: str  # names the settings in cache keys
    # the bytes one compressed chunk holds (at most LIMIT), None if it is not
    # exactly one chunk as `compress` writes them (a stream, nothing after it)
    expand: Expand = _no_expand

    def holds(self, blob: bytes | memoryview, chunk: bytes) -> bool:
        """Whether BLOB, from somewhere not trusted, is one compressed CHUNK."""
        return self.expand(blob, len(chunk)) == chunk


def _sample() -> bytes:
    """Fixed, mildly compressible bytes that exercise the match finder."""
    return b"".join(b"%08d %d acigen chunk\n" % (i, i * i % 9973) for i in range(3000))


_codecs: dict[str, Codec] = {}


def codec(compression: str) -> Codec:
    """The codec for COMPRESSION.  Its tag holds a fingerprint of what the
    library writes for a fixed sample, so a library upgrade that changes the
    output cannot mix old and new chunks (clean and incremental builds must
    give the same bytes)."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}")
    if compression not in _codecs:
        if compression == "none":
            _codecs[compression] = Codec("none", bytes, "raw")
        else:
            short, fn, expand = _COMPRESSORS[compression]
            print_ = hashlib.sha256(fn(_sample())).hexdigest()[:12]
            _codecs[compression] = Codec(compression, fn, f"{short}-v{FORMAT_VERSION}-{print_}",
                                         expand)
    return _codecs[compression]


# -- the cache ----------------------------------------------------------------

def checked_blob(data: bytes) -> bytes | None:
    """The compressed bytes of a cached chunk file's DATA, if its digest holds."""
    blob = data[_HEAD:]
    if data[:len(CHUNK_MAGIC)] == CHUNK_MAGIC and \
            hashlib.sha256(blob).digest() == data[len(CHUNK_MAGIC):_HEAD]:
        return blob
    return None


class ChunkCache:
    """Compressed chunks by content: DIR/<sha256 of the chunk>.<codec tag>,
    each with the digest of its compressed bytes, checked on reuse (`load`).

    Growth is bounded by the outputs: after a successful pack, `record()`
    lists the chunks that output used (DIR/uses/<hash of its path>) and
    `collect()` deletes every chunk that no output's last pack used; lists
    of outputs that no longer exist are dropped first.  Packs hold the cache
    shared (`in_use()`) while they run; `collect()` runs only when it can
    take the cache exclusively, so it never deletes a chunk another pack is
    about to list.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self.damaged: list[str] = []  # chunks found damaged (and recompressed)
        self._shared: Mapping[str, bytes | memoryview] = {}
        self.shared_from = ""
        self.rejected: list[str] = []  # offered chunks that failed their check

    @contextlib.contextmanager
    def in_use(self) -> Iterator[ChunkCache]:
        os.makedirs(os.path.join(self.path, "uses"), exist_ok=True)
        with holding(os.path.join(self.path, "lock"), fcntl.LOCK_SH) as fd:
            self._lock_fd = fd
            try:
                yield self
            finally:
                self._lock_fd = None

    def load(self, name: str) -> bytes | None:
        """The compressed chunk NAME if cached and intact.  A damaged one is
        removed and counted in `damaged`; the caller compresses it again."""
        path = os.path.join(self.path, name)
        try:
            with open(path, "rb") as src:
                data = src.read()
        except (FileNotFoundError, IsADirectoryError):
            return None
        blob = checked_blob(data)
        if blob is not None:
            return blob
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.damaged.append(name)
        return None

    def offer(self, shared: Mapping[str, bytes | memoryview], source: str) -> None:
        """Compressed chunks by name from SOURCE (a cache repository): not
        trusted, each is used only if it expands to exactly the chunk named."""
        self._shared, self.shared_from = shared, source

    def from_shared(self, name: str, chunk: bytes, codec: Codec) -> bytes | None:
        """The offered chunk NAME if it is CHUNK compressed by CODEC, else None."""
        blob = self._shared.get(name)
        if blob is None:
            return None
        if codec.holds(blob, chunk):
            return bytes(blob)
        self.rejected.append(name)
        return None

    def damage_report(self) -> str:
        """One line on the damaged chunks found, or '' when none were."""
        lines = []
        if self.damaged:
            lines.append(f"{len(self.damaged)} damaged chunk(s) in {self.path} (e.g. "
                         f"{self.damaged[0]}) failed their check and were compressed again")
        if self.rejected:
            lines.append(f"{len(self.rejected)} chunk(s) from {self.shared_from} (e.g. "
                         f"{self.rejected[0]}) are not what their names say and were "
                         "compressed here")
        return "; ".join(lines)

    @contextlib.contextmanager
    def claim(self, name: str) -> Iterator[None]:
        """Hold chunk NAME's claim while making it: a pack that needs the same
        chunk meanwhile (the ACI and the OCI archive are written at the same
        time) waits for it, then finds it in the cache, instead of compressing
        it again.  Only an optimisation: a claim lost to a race (its file is
        removed on release) means the chunk is compressed twice, never wrong;
        a pack that dies releases its claims with its file descriptors."""
        os.makedirs(self.path, exist_ok=True)
        path = os.path.join(self.path, name + CLAIM)
        fd = lock_fd(path, fcntl.LOCK_EX)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)

    def store(self, name: str, blob: bytes) -> None:
        header = CHUNK_MAGIC + hashlib.sha256(blob).digest()
        atomic_write(os.path.join(self.path, name), [header, blob], mode=0o600)

    def _use_file(self, output: str) -> str:
        digest = hashlib.sha256(os.fsencode(output)).hexdigest()[:32]
        return os.path.join(self.path, "uses", digest)

    def record(self, output: str, names: Sequence[str]) -> None:
        """OUTPUT (an absolute path) was just written from chunks NAMES."""
        text = "\n".join([output, *sorted(set(names))]) + "\n"
        atomic_write(self._use_file(output), text.encode("utf-8", "surrogateescape"),
                     mode=0o600)

    def collect(self) -> int:
        """Delete chunks no output uses; returns how many, or -1 when another
        pack holds the cache (it collects when it finishes)."""
        if self._lock_fd is None:
            raise RuntimeError("collect() needs in_use()")
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return -1
        live = self._live_names()
        removed = 0
        for name in os.listdir(self.path):
            if name in live or name in ("lock", "uses"):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.path, name))
                removed += 1
        return removed

    def _live_names(self) -> set[str]:
        live: set[str] = set()
        uses = os.path.join(self.path, "uses")
        for name in os.listdir(uses):
            path = os.path.join(uses, name)
            with open(path, encoding="utf-8", errors="surrogateescape") as src:
                lines = src.read().splitlines()
            if name.startswith(".tmp-") or not lines or not os.path.exists(lines[0]):
                os.unlink(path)  # an interrupted record, or an output since removed
                continue
            live.update(lines[1:])
        return live


# -- the compressor -------------------------------------------------------------

@dataclass(frozen=True)
class ChunkedResult:
    """What a ChunkedCompressor wrote.

    size / digests: the uncompressed stream (hex, by algorithm name);
    compressed_size / compressed_digest: the output (hex of the algorithm
    asked for, else None); chunks / reused: how many chunks, how many came
    from the cache; names: the cache entries used, in order; damaged: cache
    entries that failed their check and were compressed again.
    """

    size: int
    digests: dict[str, str]
    compressed_size: int
    compressed_digest: str | None
    chunks: int
    reused: int
    names: tuple[str, ...]
    damaged: tuple[str, ...] = ()
    shared: int = 0                   # of the reused, how many were offered (ChunkCache.offer)
    blob_sizes: tuple[int, ...] = ()  # the compressed size of each of NAMES


@dataclass(frozen=True)
class _Done:
    name: str
    blob: bytes
    reused: bool = False  # from the cache (checked)
    shared: bool = False  # offered to the cache, and found to be this chunk


class _Bytes:
    """The sizes of queued chunks, oldest first, and their total."""

    def __init__(self) -> None:
        self.sizes: collections.deque[int] = collections.deque()
        self.total = 0

    def add(self, size: int) -> None:
        self.sizes.append(size)
        self.total += size

    def pop(self) -> None:
        self.total -= self.sizes.popleft()


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) or 1


def in_bulk(header: bytes) -> bool:
    """Whether the tar entry of HEADER (ustar, maybe after a pax header) is in
    usr/, at the top or under an ACI's rootfs/.  A name too long for ustar
    still starts its name field (tarstream.header)."""
    block = header[-512:]
    name = block[:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0] if len(block) == 512 else b""
    path = (prefix + b"/" + name if prefix else name).removeprefix(b"rootfs/")
    return path.startswith(BULK_DIR)


class ChunkedCompressor:
    """Compresses what is written to it into OUT (written through its file
    descriptor, from its current position).  See the module docstring."""

    def __init__(self, out: BinaryIO, compression: str, cache: ChunkCache | None = None,
                 jobs: int | None = None, policy: ChunkPolicy | None = None,
                 digests: Sequence[str] = ("sha512",),
                 compressed_digest: str | None = None) -> None:
        self.codec = codec(compression)
        self.cache = cache if compression != "none" else None
        self.policy = policy or ChunkPolicy.for_average(DEFAULT_AVERAGE[compression])
        self._bulk_policy = self.policy
        near = NEAR_AVERAGE.get(compression)
        self._near_policy = ChunkPolicy.for_average(near) \
            if near and near * 3 // 4 < self.policy.min_size else None
        self.jobs = jobs or default_jobs()
        out.flush()
        self._fd = out.fileno()
        self._pool = LargestFirstPool(self.jobs, "compress")
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="digest")
        self._digests = {name: hashlib.new(name) for name in digests}
        self._out_digest = hashlib.new(compressed_digest) if compressed_digest else None
        self._pending: collections.deque[Future[_Done]] = collections.deque()
        self._hashing: collections.deque[Future[None]] = collections.deque()
        # chunks in flight, by bytes: isolate() makes some chunks small, and a
        # bound by count would then leave the compression threads idle
        self._window = 2 * self.jobs * self.policy.max_size
        self._compressing = _Bytes()
        self._queued_for_digest = _Bytes()
        self._pieces: list[bytes | memoryview] = []
        self._size = 0  # bytes in the current chunk
        self._run = 0  # bytes since the last cut candidate
        self._key = b""
        self._run_index = 0
        self._total = self._written = self._chunks = self._reused = 0
        self._names: list[str] = []
        self._blob_sizes: list[int] = []
        self._shared = 0
        self._damaged_before = len(self.cache.damaged) if self.cache else 0
        self._isolated = False  # in a file's data cut off by isolate()
        self._closed = False

    # -- the stream -----------------------------------------------------------

    def mark(self, key: bytes) -> None:
        """An entry starts here; KEY (its header) decides whether to cut."""
        if self._isolated:  # the end of an isolated file (and its padding)
            self._isolated = False
            self._cut()
            self._run = 0
        if self._near_policy is not None:
            policy = self._bulk_policy if in_bulk(key) else self._near_policy
            if policy is not self.policy:  # a region's edge (NEAR_AVERAGE)
                self._cut()
                self._run = 0
                self.policy = policy
        self._key, self._run_index = key, 0
        self._candidate(key)

    def isolate(self, size: int) -> None:
        """SIZE bytes of one file's data start here (then its padding).

        With gzip, a big file's data is cut off from the entries around it and
        cut inside by offset alone, not by its header: so the same file gives
        the same chunks in the ACI (rootfs/NAME) and in an OCI layer (NAME),
        and the second of them finds them in the cache instead of compressing
        them again (issue 19: a clean ACI + OCI build compressed almost every
        byte twice).  xz, whose ratio suffers from small chunks, cuts as before."""
        if self.codec.name != "gzip" or size < ISOLATE_MIN:
            return
        self._cut()
        self._isolated = True
        self._key, self._run_index, self._run = b"\0isolated", 0, 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view) > self.policy.run - self._run:
            room = self.policy.run - self._run
            self._append(view[:room])
            view = view[room:]
            self._run_index += 1  # a point inside a big file: a candidate too
            self._candidate(self._key + b"\0%d" % self._run_index)
        if len(view):
            self._append(view)

    def _append(self, data: memoryview) -> None:
        self._pieces.append(data)
        self._size += len(data)
        self._run += len(data)

    def _candidate(self, key: bytes) -> None:
        policy = self.policy
        if self._size >= policy.min_size:
            draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
            if draw * policy.mean_extra < self._run << 64:  # draw/2^64 < run/mean_extra
                self._cut()
        if self._size + policy.run > policy.max_size:
            self._cut()
        self._run = 0

    def _cut(self) -> None:
        if not self._size:
            return
        chunk = b"".join(self._pieces)
        self._pieces, self._size = [], 0
        self._total += len(chunk)
        self._hashing.append(self._hasher.submit(self._digest, chunk))
        self._queued_for_digest.add(len(chunk))
        self._pending.append(self._pool.submit(len(chunk), lambda: self._compress(chunk)))
        self._compressing.add(len(chunk))
        self._write_ready(limit=self._window)

    # -- workers --------------------------------------------------------------

    def _digest(self, chunk: bytes) -> None:
        for digest in self._digests.values():
            digest.update(chunk)

    def _compress(self, chunk: bytes) -> _Done:
        if self.codec.name == "none":
            return _Done("", blob=chunk)
        name = f"{hashlib.sha256(chunk).hexdigest()}.{self.codec.tag}"
        if self.cache is None:
            return _Done(name, blob=self.codec.compress(chunk))
        cached = self.cache.load(name)
        if cached is not None:
            return _Done(name, cached, reused=True)
        with self.cache.claim(name):
            cached = self.cache.load(name)  # made by whoever held the claim before
            if cached is not None:
                return _Done(name, cached, reused=True)
            blob = self.cache.from_shared(name, chunk, self.codec)
            shared = blob is not None
            if blob is None:
                blob = self.codec.compress(chunk)
            self.cache.store(name, blob)
        return _Done(name, blob=blob, reused=shared, shared=shared)

    # -- output, in order -----------------------------------------------------

    def _write_ready(self, limit: int) -> None:
        """Write the chunks done, in order; wait while more than LIMIT bytes are
        in flight (and, for the digests, queued)."""
        while self._hashing and (self._queued_for_digest.total > limit or
                                 self._hashing[0].done()):
            self._hashing.popleft().result()
            self._queued_for_digest.pop()
        while self._pending and (self._compressing.total > limit or self._pending[0].done()):
            done = self._pending.popleft().result()
            self._compressing.pop()
            self._chunks += 1
            if done.name:
                self._names.append(done.name)
                self._blob_sizes.append(len(done.blob))
            self._reused += done.reused
            self._shared += done.shared
            self._emit(done.blob)

    def _emit(self, data: bytes | memoryview) -> None:
        if self._out_digest is not None:
            self._out_digest.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._written += len(data)

    # -- the end ----------------------------------------------------------------

    def close(self) -> ChunkedResult:
        """Cut the last chunk, write everything, return what was written."""
        self._cut()
        self._write_ready(limit=0)
        self._shutdown(cancel=False)
        return ChunkedResult(
            size=self._total,
            digests={name: d.hexdigest() for name, d in self._digests.items()},
            compressed_size=self._written,
            compressed_digest=self._out_digest.hexdigest() if self._out_digest else None,
            chunks=self._chunks, reused=self._reused, names=tuple(self._names),
            damaged=tuple(self.cache.damaged[self._damaged_before:]) if self.cache else (),
            shared=self._shared, blob_sizes=tuple(self._blob_sizes))

    def abort(self) -> None:
        """Stop: drop queued chunks, wait for the ones being compressed."""
        self._pending.clear()
        self._hashing.clear()
        self._shutdown(cancel=True)

    def _shutdown(self, cancel: bool) -> None:
        if not self._closed:
            self._closed = True
            self._pool.shutdown(cancel)
            self._hasher.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> ChunkedCompressor:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None:
            self.abort()
        else:
            self._shutdown(cancel=False)
