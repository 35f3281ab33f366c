"""Parse ld.so.conf the way glibc's ldconfig does (ldconfig's input, not the loader's).

Grammar: `#` starts a comment anywhere; blank lines are ignored; `include PATTERN...` reads
every file the glob patterns match, in sorted order, a relative pattern being relative to the
directory of the file that contains the include; every other line is one directory, with an
optional `=type` suffix and trailing blanks and slashes removed.  Include cycles are reported
and cut; duplicate directories keep their first position.  Each file is read once: reading it
again could only repeat directories already listed, and files that include each other would
cost a factorial number of reads.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from acigen.helpers.rootfs.walk import FILE, Walker

DEFAULT_PATH = "/etc/ld.so.conf"


@dataclass(frozen=True)
class LdConf:
    dirs: tuple[str, ...]
    warnings: tuple[str, ...]
    files: tuple[str, ...] = ()  # every file read, as named (ld.so.conf and its includes)


class _Parser:
    def __init__(self, walker: Walker) -> None:
        self.walker = walker
        self.dirs: list[str] = []
        self.warnings: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (path as named, physical path)
        self.files: list[str] = []
        self.read: set[str] = set()  # physical paths already read

    def file(self, path: str) -> None:
        walk = self.walker.resolve(path)
        if walk.status != FILE:
            return
        if any(real == walk.path for _, real in self.stack):
            chain = " -> ".join([name for name, _ in self.stack] + [path])
            self.warnings.append(f"ld.so.conf include cycle: {chain} (ignored)")
            return
        if path not in self.files:
            self.files.append(path)
        if walk.path in self.read:
            return
        self.read.add(walk.path)
        self.stack.append((path, walk.path))
        with self.walker.open(walk.path) as stream:
            text = stream.read().decode("utf-8", "surrogateescape")
        for number, raw in enumerate(text.splitlines(), 1):
            self.line(path, number, raw.split("#", 1)[0].strip())
        self.stack.pop()

    def line(self, path: str, number: int, line: str) -> None:
        if not line:
            return
        if line.startswith("include") and line[7:8] in (" ", "\t"):
            for pattern in line[8:].split():
                if not pattern.startswith("/"):
                    pattern = posixpath.join(posixpath.dirname(path), pattern)
                for match in self.walker.glob(pattern):
                    self.file(match)
        elif line[:5].lower() == "hwcap" and line[5:6] in (" ", "\t"):
            self.warnings.append(f"{path}:{number}: obsolete hwcap line ignored")
        else:
            self.directory(path, number, line)

    def directory(self, path: str, number: int, line: str) -> None:
        directory = line.split("=", 1)[0].rstrip()
        while len(directory) > 1 and directory.endswith("/"):
            directory = directory[:-1]
        if not directory.startswith("/"):
            self.warnings.append(f"{path}:{number}: relative directory {directory!r} ignored")
        elif directory not in self.dirs:
            self.dirs.append(directory)


def parse(walker: Walker, path: str = DEFAULT_PATH) -> LdConf:
    """Directories listed by PATH inside the walker's root, in ldconfig's order."""
    parser = _Parser(walker)
    parser.file(path)
    return LdConf(tuple(parser.dirs), tuple(parser.warnings), tuple(parser.files))
