"""Can the kernel start this program in the image?  Asked before a step's
container starts, so the common failures read as what they are (a name not
on PATH, a script or binary whose interpreter the image lacks) rather than
as the runtime's wording of them.  What this misses, the runtime reports.
"""

from __future__ import annotations

import os
import stat
import struct

from acigen.helpers.rootfs.root import Root

HEAD = 256  # enough for a #! line
PT_INTERP = 3
MAX_INTERP = 4096


def why_not_startable(root: Root, program: str, path: str, cwd: str) -> str | None:
    """None if PROGRAM (a path, or a name looked up on PATH) can start in
    ROOT as far as we can tell; otherwise the reason, in execve's words."""
    if "/" not in program:
        found = next((p for d in path.split(":") if _is_file(root, p := _join(d, cwd, program))),
                     None)
        if found is None:
            return f"{program}: No such file or directory"
        return _interpreter_missing(root, found, program)
    return _interpreter_missing(root, _join("", cwd, program), program)


def _join(directory: str, cwd: str, name: str) -> str:
    return os.path.normpath(os.path.join(cwd, directory or ".", name))


def _is_file(root: Root, path: str) -> bool:
    st = _stat(root, path)
    return st is not None and stat.S_ISREG(st.st_mode)


def _stat(root: Root, path: str) -> os.stat_result | None:
    try:
        fd = root.open(path, os.O_PATH)
    except OSError:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _interpreter_missing(root: Root, path: str, shown: str) -> str | None:
    interpreter = _interpreter(root, path)
    if interpreter is None or _stat(root, interpreter) is not None:
        return None
    return (f"{shown}: cannot be executed: its interpreter (the #! line, or the ELF "
            "loader) is missing in the image")


def _interpreter(root: Root, path: str) -> str | None:
    """The #! interpreter or the ELF loader PATH names, if it names an absolute one."""
    try:
        fd = root.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        head = os.pread(fd, HEAD, 0)
        if head.startswith(b"#!"):
            words = head[2:].split(b"\n", 1)[0].split()
            name = os.fsdecode(words[0]) if words else ""
            return name if name.startswith("/") else None
        if head.startswith(b"\x7fELF"):
            return _elf_interpreter(fd, head, st.st_size)
        return None
    finally:
        os.close(fd)


def _elf_interpreter(fd: int, head: bytes, size: int) -> str | None:
    """PT_INTERP of an ELF file, read by hand: helpers/elf would cost every
    step its import time, and only this one field is wanted here."""
    if len(head) < 64 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    wide, end = head[4] == 2, "<" if head[5] == 1 else ">"
    if wide:
        phoff, = struct.unpack_from(end + "Q", head, 32)
        entsize, count = struct.unpack_from(end + "HH", head, 54)
        layout = end + "II QQ Q Q"  # type, flags, offset, vaddr, paddr, filesz
    else:
        phoff, = struct.unpack_from(end + "I", head, 28)
        entsize, count = struct.unpack_from(end + "HH", head, 42)
        layout = end + "I I II I"  # type, offset, vaddr, paddr, filesz
    want = struct.calcsize(layout)
    if entsize < want or phoff + entsize * count > size or count > 4096:
        return None
    table = os.pread(fd, entsize * count, phoff)
    for index in range(len(table) // entsize):
        fields = struct.unpack_from(layout, table, index * entsize)
        if fields[0] != PT_INTERP:
            continue
        offset, length = (fields[2], fields[5]) if wide else (fields[1], fields[4])
        if length > MAX_INTERP or offset + length > size:
            return None
        name = os.pread(fd, length, offset).split(b"\0", 1)[0]
        return os.fsdecode(name) if name.startswith(b"/") else None
    return None
