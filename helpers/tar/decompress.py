"""Open an archive file as a stream of uncompressed tar bytes.

Compression is recognised by its magic bytes, never by the file name:
gzip, bzip2, xz and zstd, or none.  Decompression runs beside the unpacking,
on another core: gzip in a thread of ours, with zlib (which releases the
GIL, and inflates a third faster than the gzip program); bzip2, xz and zstd
in the usual programs (`bzip2`, `xz`, `zstd`) as child processes, as GNU
tar does.  Without the program, bzip2 and xz fall back to Python's modules;
zstd has none before Python 3.14, so the `zstd` program is a runtime
dependency for zstd archives only.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import shutil
import stat
import threading
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from acigen.errors import HelperError

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_PROGRAMS = {"bzip2": "bzip2", "xz": "xz", "zstd": "zstd"}
_PY_MODULES = {"bzip2": "bz2", "xz": "lzma"}  # imported when needed: startup counts
_PIPE_SIZE = 1 << 20


def sniff(head: bytes) -> str:
    """'gzip', 'bzip2', 'xz', 'zstd' or 'tar', from the first bytes."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 512 and (head[257:262] == b"ustar" or _plausible_v7(head[:512])):
        return "tar"
    raise HelperError("not a tar archive, nor gzip, bzip2, xz or zstd compressed")


def _plausible_v7(block: bytes) -> bool:
    """A pre-POSIX header: no magic, but its checksum adds up."""
    digits = block[148:156].strip(b" \0")
    return digits.isdigit() and int(digits, 8) == sum(block) - sum(block[148:156]) + 256


@contextlib.contextmanager
def tar_stream(path: str) -> Iterator[tuple[int, str]]:
    """(fd of the uncompressed tar bytes, compression name) for PATH.

    A decompressor's failure (a corrupt or truncated file) is reported when
    the block ends, so read the stream to its end before leaving it.
    """
    try:
        src = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise HelperError(f"{path}: {exc.strerror}") from None
    with src:
        head = src.read(512)
        kind = sniff(head)
        if kind == "tar":
            if _seekable(src):
                os.lseek(src.fileno(), 0, os.SEEK_SET)
                yield src.fileno(), kind
            else:
                with _python_pipe(src, head, None) as fd:
                    yield fd, kind
            return
        program = shutil.which(_PROGRAMS[kind]) if kind in _PROGRAMS else None
        if program is None and kind not in _PY_MODULES and kind != "gzip":
            raise HelperError(f"{path} is {kind}-compressed and the {kind} program is missing",
                              hint=f"install it (Debian: apt-get install {kind})")
        if program is None:
            members = _gzip_members(src) if kind == "gzip" else None
            with _python_pipe(src, head, kind, members) as fd:
                yield fd, kind
            return
        with _decompressor(program, src, head, path) as fd:
            yield fd, kind


def _gzip_members(src: BinaryIO) -> int | None:
    """The size of a gzip file whose members say their lengths (as the layers
    acigen pushes do: helpers/tar/gzipmembers.py), to inflate on two cores;
    else None."""
    from acigen.helpers.tar.gzipmembers import has_lengths
    if not _seekable(src) or not has_lengths(src.fileno()):
        return None
    return os.fstat(src.fileno()).st_size


def _seekable(src: BinaryIO) -> bool:
    """A regular file: read from its start again, by a child process too."""
    return stat.S_ISREG(os.fstat(src.fileno()).st_mode)


@contextlib.contextmanager
def _decompressor(program: str, src: BinaryIO, head: bytes, path: str) -> Iterator[int]:
    """Run PROGRAM -dc on SRC; yield the read end of its output."""
    import subprocess
    import tempfile
    feed = not _seekable(src)
    if not feed:
        os.lseek(src.fileno(), 0, os.SEEK_SET)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([program, "-dc"], stdin=subprocess.PIPE if feed else src,
                                stdout=subprocess.PIPE, stderr=errors, close_fds=True)
        assert proc.stdout is not None
        _grow_pipe(proc.stdout.fileno())
        feeder = _start_feeder(src, head, proc.stdin) if feed else None
        try:
            yield proc.stdout.fileno()
        except BaseException:
            proc.kill()  # the feeder thread may wait on its source: not joined
            proc.stdout.close()
            proc.wait()
            raise
        proc.stdout.close()
        proc.wait()
        if feeder is not None:
            feeder.join()
        if proc.returncode != 0:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()
            raise HelperError(f"{path}: {os.path.basename(program)} failed: "
                              + (said[-1] if said else f"exit status {proc.returncode}"))


def _start_feeder(src: BinaryIO, head: bytes, sink: BinaryIO | None) -> threading.Thread:
    """Copy a non-seekable SRC (the bytes already read first) into SINK."""
    def run() -> None:
        assert sink is not None
        try:
            sink.write(head)
            while chunk := src.read(_PIPE_SIZE):
                sink.write(chunk)
        except (BrokenPipeError, ValueError, OSError):
            pass  # the reader stopped early; its exit status tells why
        finally:
            with contextlib.suppress(OSError):
                sink.close()
    thread = threading.Thread(target=run, name="archive-feeder", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _python_pipe(src: BinaryIO, head: bytes, kind: str | None,
                 members: int | None = None) -> Iterator[int]:
    """Decompress (or just pass on) SRC in a thread, into a pipe we read; gzip
    that says its members' lengths (MEMBERS: the file's size) is inflated on
    threads of its own."""
    read_end, write_end = os.pipe()
    _grow_pipe(read_end)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with os.fdopen(write_end, "wb") as sink:
                if members is not None:
                    from acigen.helpers.tar.gzipmembers import inflate_into
                    inflate_into(src.fileno(), members, sink)
                    return
                stream: BinaryIO = _Prefixed(head, src)  # type: ignore[assignment]
                if kind == "gzip":
                    _gunzip(stream, sink)
                    return
                if kind is not None:
                    module = importlib.import_module(_PY_MODULES[kind])
                    stream = module.open(stream, "rb")
                while chunk := stream.read(_PIPE_SIZE):
                    sink.write(chunk)
        except BrokenPipeError:
            pass
        except Exception as exc:  # corrupt data: reported to the reader below
            failure.append(exc)
    thread = threading.Thread(target=run, name="archive-decompress", daemon=True)
    thread.start()
    try:
        yield read_end
    finally:
        os.close(read_end)  # the thread stops at its next write (unless stuck reading)
        if members is not None:
            thread.join()  # its inflaters read SRC's fd, which our caller closes next
    thread.join()
    if failure:
        raise HelperError(f"cannot decompress the archive: {failure[0]}")


def _gunzip(src: BinaryIO, sink: BinaryIO) -> None:
    """gzip members one after another, as `gzip -d` reads them (zero bytes
    after the last one are padding); output in bounded pieces."""
    data = b""
    inflater = None
    while True:
        if not data:
            data = src.read(_PIPE_SIZE)
            if not data:
                break
        if inflater is None:
            if not data.strip(b"\0"):
                data = b""
                continue
            inflater = zlib.decompressobj(wbits=31)
        sink.write(inflater.decompress(data, _PIPE_SIZE))
        if inflater.eof:
            data, inflater = inflater.unused_data, None
        else:
            data = inflater.unconsumed_tail
    if inflater is not None:
        raise EOFError("the gzip data ends early (a truncated file?)")


class _Prefixed:
    """SRC with HEAD (already read from it) put back in front."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head = head
        self._src = src

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._src.read(n)
        if n < 0:
            data, self._head = self._head + self._src.read(), b""
            return data
        data, self._head = self._head[:n], self._head[n:]
        return data


def _grow_pipe(fd: int) -> None:
    """Fewer, larger reads: the default 64 KiB pipe costs many wakeups."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
