"""A deterministic tar of content-addressed blobs (an OCI image layout, or a
docker archive), written in one pass.

A blob's name (`blobs/sha256/<digest>`) is known only after its bytes are
written, and a tar header comes before the bytes.  The names have a fixed
length, so we reserve the header block, stream the blob (compressed, in
chunks, through the chunk cache) straight into the archive, and then seek
back and write the header: no blob is ever written twice.  Every entry is
owned by 0:0 with mtime SOURCE_DATE_EPOCH, so the same blobs give the same
archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from acigen.errors import HelperError
from acigen.helpers.tar.chunks import (
    FORMAT_VERSION,
    ChunkCache,
    ChunkedCompressor,
    ChunkPolicy,
    Codec,
    MiB,
)
from acigen.helpers.tar.writer import (
    BLOCK,
    DIRECTORY,
    REGULAR,
    Entry,
    header,
    padding,
    write_end,
)
from acigen.specs import OCI_COMPRESSIONS

MAX_USTAR_SIZE = 8 ** 11 - 1  # a bigger blob would need a pax header of unknown length
ZSTD_LEVEL = 3  # zstd's own default: about gzip -6's ratio at several times its speed


# -- zstd, which tar/chunks.py does not know (ACIs cannot use it) ---------------------------

def _zstd_frame(data: bytes) -> bytes:
    program = shutil.which("zstd")
    if program is None:
        raise HelperError("zstd compression needs the zstd program",
                          hint="install it (Debian: apt-get install zstd), or use gzip")
    result = subprocess.run([program, f"-{ZSTD_LEVEL}", "-T1", "-q", "-c", "-"],
                            input=data, capture_output=True)
    if result.returncode != 0:
        raise HelperError(f"zstd failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


_zstd_codec: Codec | None = None


def zstd_codec() -> Codec:
    """A zstd frame per chunk; frames concatenate into one valid stream.  The
    tag fingerprints the program's output, like chunks.codec() does."""
    global _zstd_codec
    if _zstd_codec is None:
        sample = b"".join(b"%08d acigen zstd sample\n" % i for i in range(3000))
        print_ = hashlib.sha256(_zstd_frame(sample)).hexdigest()[:12]
        _zstd_codec = Codec("zstd", _zstd_frame, f"zst{ZSTD_LEVEL}-v{FORMAT_VERSION}-{print_}")
    return _zstd_codec


def compressor(out: BinaryIO, compression: str, cache: ChunkCache | None) -> ChunkedCompressor:
    """A ChunkedCompressor for an OCI compression (gzip, zstd, none) that
    also gives the sha256 of the uncompressed and the compressed bytes."""
    if compression not in OCI_COMPRESSIONS:
        raise HelperError(f"OCI layers are gzip, zstd or none, not {compression!r}")
    if compression != "zstd":
        return ChunkedCompressor(out, compression, cache, digests=("sha256",),
                                 compressed_digest="sha256")
    stream = ChunkedCompressor(out, "gzip", cache, policy=ChunkPolicy.for_average(4 * MiB),
                               digests=("sha256",), compressed_digest="sha256")
    stream.codec = zstd_codec()
    return stream


# -- the archive ------------------------------------------------------------------------

@dataclass(frozen=True)
class Blob:
    digest: str          # "sha256:<hex>"
    size: int
    offset: int          # where its bytes start in the archive

    @property
    def path(self) -> str:
        return "blobs/sha256/" + self.digest.split(":", 1)[1]


class ArchiveWriter:
    """Entries of an archive file opened unbuffered (compressors write
    through its file descriptor)."""

    def __init__(self, out: BinaryIO, epoch: int) -> None:
        self.out = out
        self.epoch = epoch
        self.blobs: dict[str, Blob] = {}

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self.out.write(view) or 0:]

    def directory(self, name: str) -> None:
        self._write(header(Entry(name.encode() + b"/", DIRECTORY, 0o755, 0, 0, self.epoch)))

    def file(self, name: str, data: bytes) -> None:
        self._write(header(Entry(name.encode(), REGULAR, 0o644, 0, 0, self.epoch, len(data))))
        self._write(data + padding(len(data)))

    def blob_bytes(self, data: bytes) -> Blob:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self.blob() as slot:
            self._write(data)
            slot.digest = digest
        return self.blobs[digest]

    @contextlib.contextmanager
    def blob(self) -> Iterator[BlobSlot]:
        """Reserve a header; the caller writes the blob's bytes and sets the
        slot's digest; the header is then filled in (or, for a blob already
        in the archive, the copy is dropped)."""
        start = self.out.tell()
        self._write(bytes(BLOCK))
        slot = BlobSlot()
        yield slot
        end = self.out.tell()
        size = end - start - BLOCK
        if not slot.digest:
            raise RuntimeError("blob written without a digest")
        if slot.digest in self.blobs:
            self.out.truncate(start)
            self.out.seek(start)
            return
        if size > MAX_USTAR_SIZE:
            raise HelperError("a layer over 8 GiB compressed cannot be stored in this archive")
        blob = Blob(slot.digest, size, start + BLOCK)
        self.out.seek(start)
        self._write(header(Entry(blob.path.encode(), REGULAR, 0o644, 0, 0, self.epoch, size)))
        self.out.seek(end)
        self._write(padding(size))
        self.blobs[slot.digest] = blob

    def copy_blob(self, blob: Blob, source: BinaryIO) -> None:
        """BLOB's bytes from another archive (SOURCE), in the kernel."""
        if blob.digest in self.blobs:
            return
        with self.blob() as slot:
            offset, left = blob.offset, blob.size
            while left:
                done = os.copy_file_range(source.fileno(), self.out.fileno(), left, offset)
                if not done:
                    raise HelperError("short copy between archives")
                offset, left = offset + done, left - done
            self.out.seek(0, os.SEEK_END)
            slot.digest = blob.digest

    def end(self) -> None:
        write_end(_Raw(self))


class BlobSlot:
    digest: str = ""


class _Raw:
    """tarstream's Sink over an ArchiveWriter (for write_end)."""

    def __init__(self, archive: ArchiveWriter) -> None:
        self.archive = archive

    def mark(self, key: bytes) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.archive._write(data)
