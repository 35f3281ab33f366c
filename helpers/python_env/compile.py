"""Compile an image's Python modules once, at build time, reproducibly.

The interpreter being copied compiles (its own magic number, its own
compiler), in a few processes running compile_worker.py.  Sources go
in as bytes and .pyc bytes come back: nothing is read from or written into
the image by the workers, so an image's symlinks cannot steer them.

The .pyc files are hash-based (PEP 552): no timestamps, the in-image path as
co_filename, and a fixed split of the work between processes, so the same
sources always give the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from acigen.errors import HelperError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compile_worker.py")
CHUNKS = 8  # fixed, so the split (and so the bytes) never depends on the machine


@dataclass(frozen=True)
class Source:
    """A module as it is in the image."""

    path: str  # absolute path in the image: co_filename, and where the .py lives
    data: bytes
    checked: bool  # CHECKED_HASH (the source is verified at import) or UNCHECKED_HASH


@dataclass(frozen=True)
class Compiled:
    pycs: dict[str, bytes]  # source path in the image -> .pyc bytes
    errors: dict[str, str]  # source path -> why it did not compile


def pyc_path(source_path: str, cache_tag: str) -> str:
    """Where the import system looks for SOURCE_PATH's compiled form."""
    head, tail = posixpath.split(source_path)
    stem = tail[:-3] if tail.endswith(".py") else tail
    return posixpath.join(head, "__pycache__", f"{stem}.{cache_tag}.pyc")


def compile_sources(python: str, sources: Sequence[Source], jobs: int | None = None) -> Compiled:
    """Compile SOURCES with the host interpreter PYTHON (the one being copied)."""
    ordered = sorted(sources, key=lambda s: s.path)
    chunks = [ordered[i::CHUNKS] for i in range(CHUNKS)]
    chunks = [chunk for chunk in chunks if chunk]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(chunks) or 1))
    pycs: dict[str, bytes] = {}
    errors: dict[str, str] = {}
    for start in range(0, len(chunks), jobs):
        for chunk, out in zip(chunks[start:start + jobs],
                              _run_workers(python, chunks[start:start + jobs]), strict=True):
            _collect(chunk, out, pycs, errors)
    return Compiled(pycs, errors)


def _write_request(stream: IO[bytes], chunk: Sequence[Source]) -> None:
    for source in chunk:
        path = source.path.encode("utf-8", "surrogateescape")
        stream.write(struct.pack(">I", len(path)) + path)
        stream.write(struct.pack(">BI", int(source.checked), len(source.data)))
        stream.write(source.data)
    stream.seek(0)


def _run_workers(python: str, chunks: Sequence[Sequence[Source]]) -> list[bytes]:
    """Run one worker per chunk at the same time; their outputs, in order."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}
    with contextlib.ExitStack() as stack:
        procs = []
        for chunk in chunks:
            request = stack.enter_context(tempfile.TemporaryFile())
            out = stack.enter_context(tempfile.TemporaryFile())
            _write_request(request, chunk)
            proc = subprocess.Popen([python, "-S", "-s", "-B", WORKER], stdin=request,
                                    stdout=out, stderr=subprocess.PIPE, env=env, cwd="/")
            stack.callback(_reap, proc)
            procs.append((proc, out))
        return [_output(python, proc, out) for proc, out in procs]


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Runs on the way out, also when interrupted: no compiler outlives us."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stderr:
        proc.stderr.close()


def _output(python: str, proc: subprocess.Popen[bytes], out: IO[bytes]) -> bytes:
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait()
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise HelperError(f"{python} could not compile the modules: "
                          + (lines[-1] if lines else f"exit status {proc.returncode}"))
    out.seek(0)
    return out.read()


def _collect(chunk: Sequence[Source], out: bytes, pycs: dict[str, bytes],
             errors: dict[str, str]) -> None:
    offset = 0
    for source in chunk:
        if offset + 5 > len(out):
            raise HelperError("the module compiler stopped early (truncated output)")
        ok, size = struct.unpack_from(">BI", out, offset)
        data = out[offset + 5:offset + 5 + size]
        offset += 5 + size
        if ok:
            pycs[source.path] = data
        else:
            errors[source.path] = data.decode("utf-8", "replace")
