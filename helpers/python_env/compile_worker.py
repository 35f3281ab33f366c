"""Compile Python sources to hash-based .pyc bytes; run by the interpreter being copied.

This file is executed as a script by the *target* interpreter (any CPython >= 3.8),
so it uses only the standard library and no syntax newer than 3.8, and imports
nothing from acigen.

stdin, repeated until EOF:  >I path length, path (UTF-8), >B checked, >I size, source
stdout, one per request, in order:  >B ok, >I size, then .pyc bytes (ok=1) or an
error message (ok=0).

The path is the file's path inside the image: it becomes co_filename, so
tracebacks name the image's files and the bytes do not depend on where the
build ran.  Hash-based pycs (PEP 552) carry no timestamp, so the same source
gives the same bytes.
"""

import sys

if __name__ == "__main__":
    # sys.path[0] is this file's directory, whose modules must not shadow the stdlib
    del sys.path[0]

import importlib.util
import marshal
import struct

HASH_BASED = 0b01
CHECK_SOURCE = 0b10


def die_with_parent():
    """A killed build must not leave compilers running behind it."""
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass  # only a nicety: stdin/stdout close when the parent dies anyway


def read_exact(stream, size):
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("truncated request")
    return data


def requests(stream):
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) != 4:
            raise EOFError("truncated request")
        path = read_exact(stream, struct.unpack(">I", head)[0]).decode("utf-8",
                                                                          "surrogateescape")
        checked = read_exact(stream, 1) != b"\0"
        (size,) = struct.unpack(">I", read_exact(stream, 4))
        yield path, checked, read_exact(stream, size)


def pyc(path, checked, source):
    code = compile(source, path, "exec", dont_inherit=True, optimize=0)
    flags = HASH_BASED | (CHECK_SOURCE if checked else 0)
    return (importlib.util.MAGIC_NUMBER + struct.pack("<I", flags)
            + importlib.util.source_hash(source) + marshal.dumps(code))


def main():
    die_with_parent()
    out = sys.stdout.buffer
    for path, checked, source in requests(sys.stdin.buffer):
        try:
            ok, data = 1, pyc(path, checked, source)
        except (SyntaxError, ValueError) as exc:
            ok, data = 0, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
        out.write(struct.pack(">BI", ok, len(data)))
        out.write(data)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
