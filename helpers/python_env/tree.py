"""Copy selected host files (a standard library, lib-dynload) into the image.

Files keep their modes and times; files are owned by whoever runs the build
(root), not by whoever installed the host's Python.  A script whose shebang
names the host interpreter gets the image's instead.  Symlinks that stay
inside the copied directory stay symlinks; others lead to host files that
are not the Python's (Debian's sitecustomize.py -> /etc/python3.11/, for an
apport hook) and are left out, and logged.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from acigen.helpers.python_env.compile import Source
from acigen.helpers.python_env.probe import PythonFacts
from acigen.helpers.python_env.selection import Entry
from acigen.helpers.rootfs.imagewrite import ImageWriter


@dataclass
class Copied:
    sources: list[Source] = field(default_factory=list)  # .py files, for compiling
    read: list[str] = field(default_factory=list)  # host files read
    files: list[str] = field(default_factory=list)  # image paths of regular files written
    skipped: list[str] = field(default_factory=list)  # host entries left out, and why


Transform = Callable[[str, bytes], bytes]  # (host path, bytes) -> bytes to write


def copy_entries(writer: ImageWriter, entries: Iterable[Entry], host_top: str, image_top: str,
                 facts: PythonFacts, transform: Transform | None = None) -> Copied:
    done = Copied()
    writer.mkdirs(image_top)
    for entry in entries:
        image = posixpath.join(image_top, entry.rel)
        mode = entry.st.st_mode
        if stat.S_ISDIR(mode):
            writer.mkdirs(image, stat.S_IMODE(mode))
        elif stat.S_ISREG(mode):
            _file(writer, entry.host, image, entry.st, facts, transform, done)
        elif stat.S_ISLNK(mode):
            _symlink(writer, entry, host_top, image, done)
        else:
            done.skipped.append(f"{entry.host}: not a regular file")
    return done


def _file(writer: ImageWriter, host: str, image: str, st: os.stat_result, facts: PythonFacts,
          transform: Transform | None, done: Copied) -> None:
    with open(host, "rb") as src:
        data = src.read()
    data = transform(host, data) if transform else image_shebang(data, facts)
    writer.file(image, data, stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    done.read.append(host)
    done.files.append(image)
    if image.endswith(".py"):
        done.sources.append(Source(image, data, checked=False))


def _symlink(writer: ImageWriter, entry: Entry, host_top: str, image: str,
             done: Copied) -> None:
    target = os.readlink(entry.host)
    real = os.path.realpath(entry.host)
    if real.startswith(os.path.realpath(host_top) + "/") and not target.startswith("/"):
        writer.symlink(image, target)
    else:
        done.skipped.append(f"left out {entry.host}: a symlink to {target}, outside "
                            f"{host_top}")


def image_shebang(data: bytes, facts: PythonFacts) -> bytes:
    """DATA with a shebang naming the host's interpreter rewritten to the image's."""
    if not data.startswith(b"#!"):
        return data
    line, newline, rest = data.partition(b"\n")
    words = line[2:].split(None, 1)
    if not words or not _is_host_python(os.fsdecode(words[0]), facts):
        return data
    args = b" " + words[1] if len(words) > 1 else b""
    return b"#!" + os.fsencode(facts.image_executable) + args + newline + rest


def _is_host_python(interpreter: str, facts: PythonFacts) -> bool:
    if interpreter in (facts.executable, facts.requested):
        return True
    bin_dir = posixpath.join(facts.prefix, "bin") + "/"
    return interpreter.startswith(bin_dir) and posixpath.basename(interpreter) \
        .startswith("python")
