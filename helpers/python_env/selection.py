"""Which files of a host Python's standard library go into the image.

Small by default (docs/python.md has the sizes).  Never copied:
- Tk: tkinter, idlelib, turtle, turtledemo (they need X11 libraries);
- modules already removed from newer Pythons, which warn when imported:
  distutils (gone in 3.12; kept before 3.10, where pip still imports it),
  lib2to3, nis and crypt (gone in 3.13; nis drags in the NIS and Kerberos
  libraries, crypt libcrypt), and msilib (Windows only);
- ensurepip (without its bundled wheels it cannot work; pip is installed
  directly) and pydoc_data (the texts of help('keyword'), 1.2 MB);
- _dbm, dbm.ndbm's module (Debian's links Berkeley DB: 1.8 MB of library,
  0.7 MB with xz, for the oldest dbm format; dbm.open() still works, with
  dbm.dumb);
- config-*/ (the static libpython, Makefile and objects for building C
  extensions, which also need the headers, never copied) and Debian's
  EXTERNALLY-MANAGED marker (the image has no package manager of its own:
  pip is how later steps install into it);
- host __pycache__ (the image gets its own, reproducible ones).
Left out unless keep_tests=True: test suites, test extension modules, and the
pure-Python twins of C modules that only tests import (_pydecimal, _pyio).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# never copied: other packages' homes, host bytecode (anywhere below the stdlib)
ALWAYS_SKIPPED_DIRS = frozenset({"__pycache__", "site-packages", "dist-packages"})
# never copied, at the top of the stdlib (lib-dynload is copied on its own)
ALWAYS_SKIPPED_TOP = frozenset({"idlelib", "tkinter", "turtledemo", "turtle.py",
                                "lib2to3", "crypt.py", "msilib", "ensurepip", "pydoc_data",
                                "lib-dynload", "EXTERNALLY-MANAGED"})
PIP_USES_SYSCONFIG = (3, 10)  # before, pip imports distutils
TEST_DIRS = frozenset({"test", "tests", "idle_test"})
TEST_ONLY_TOP = frozenset({"_pydecimal.py", "_pyio.py"})
BUILD_SUPPORT = "config-*"
UNWANTED_MODULES = ("_tkinter.*", "nis.*", "_crypt.*", "_dbm.*")
TEST_MODULES = ("_test*", "_ctypes_test*", "_xxtestfuzz*", "xxlimited*", "xxsubtype*")


@dataclass(frozen=True)
class Entry:
    host: str  # path on the host
    rel: str  # path below the copied directory
    st: os.stat_result  # lstat on the host


def stdlib_entries(top: str, keep_tests: bool, version: tuple[int, ...]) -> Iterator[Entry]:
    """The standard library below TOP (lib-dynload excluded: see dynload_entries)."""
    def keep(entry: Entry) -> bool:
        if entry.rel == "distutils":
            return version < PIP_USES_SYSCONFIG
        return not _skipped(entry.rel, stat.S_ISDIR(entry.st.st_mode), keep_tests)
    yield from _walk(top, keep)


def dynload_entries(top: str, keep_tests: bool) -> Iterator[Entry]:
    """Extension modules in lib-dynload (no subdirectories are copied)."""
    skipped = UNWANTED_MODULES + (() if keep_tests else TEST_MODULES)

    def keep(entry: Entry) -> bool:
        return not any(fnmatch.fnmatch(entry.rel, pattern) for pattern in skipped)
    yield from _walk(top, keep, recurse=False)


def _skipped(rel: str, is_dir: bool, keep_tests: bool) -> bool:
    parts = rel.split("/")
    if rel in ALWAYS_SKIPPED_TOP or (is_dir and parts[-1] in ALWAYS_SKIPPED_DIRS):
        return True
    if not keep_tests and ((is_dir and parts[-1] in TEST_DIRS) or rel in TEST_ONLY_TOP):
        return True
    return fnmatch.fnmatch(rel, BUILD_SUPPORT)


def _walk(top: str, keep: Callable[[Entry], bool], recurse: bool = True) -> Iterator[Entry]:
    """Sorted walk of what KEEP accepts; a refused directory is not entered."""
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        with os.scandir(os.path.join(top, rel_dir)) as it:
            children = sorted(it, key=lambda e: e.name)
        subdirs = []
        for child in children:
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            entry = Entry(child.path, rel, child.stat(follow_symlinks=False))
            if not keep(entry):
                continue
            yield entry
            if recurse and stat.S_ISDIR(entry.st.st_mode):
                subdirs.append(rel)
        pending.extend(reversed(subdirs))
