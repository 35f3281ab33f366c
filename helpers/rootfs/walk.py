"""Resolve paths inside a root directory for *reading*, as the kernel would after chroot(ROOT).

The walk goes component by component: a symlink's target is spliced in (absolute targets
restart at ROOT, relative ones continue from the link's directory), `..` at ROOT stays at
ROOT, and `..` after a symlinked directory goes to the *target's* parent (the walk only ever
holds link-free physical paths).  Every symlink passed through, file or directory link, is
reported, because a tree pruned to a closure must keep them.

os.path.realpath is never used on root-joined paths: it follows absolute links on the host.
The only host paths touched are ROOT + a link-free in-root path, so nothing outside ROOT is
ever opened.  Results are memoised per Walker; make a new Walker after changing the tree.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from acigen.helpers.core.common import open_regular

MAX_HOPS = 40  # the kernel's MAXSYMLINKS: ELOOP after 40 links in one lookup

FILE, DIR, MISSING, DANGLING, LOOP, NOTDIR, OTHER = (
    "file", "dir", "missing", "dangling", "loop", "notdir", "other")


@dataclass(frozen=True)
class Walk:
    """Where a path leads inside a root.

    path: absolute in-root path of the final object (no symlinks in it); for a failed walk,
    the path of the component that failed.  links: every symlink traversed, in order, as
    absolute in-root paths.  status: file, dir, missing, dangling, loop, notdir or other.
    """

    path: str
    links: tuple[str, ...]
    status: str

    @property
    def exists(self) -> bool:
        return self.status in (FILE, DIR, OTHER)


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _join(parent: str, name: str) -> str:
    return parent + name if parent.endswith("/") else parent + "/" + name


class Walker:
    """Memoising resolver for one root directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._prefix = "" if self.root == "/" else self.root
        self._lstats: dict[str, os.stat_result | None] = {}
        self._targets: dict[str, str] = {}
        self._walks: dict[str, Walk] = {}
        self._listings: dict[str, tuple[str, ...]] = {}

    def host(self, path: str) -> str:
        """Host path of a link-free in-root path (a Walk's path)."""
        return self._prefix + path if path != "/" else (self._prefix or "/")

    def open(self, path: str) -> BinaryIO:
        """A link-free in-root path opened for reading, if a regular file
        (a FIFO there would block a plain open forever)."""
        return os.fdopen(open_regular(self.host(path)), "rb")

    def lstat(self, path: str) -> os.stat_result | None:
        """lstat of a link-free in-root path, None if it cannot be reached."""
        try:
            return self._lstats[path]
        except KeyError:
            pass
        try:
            result: os.stat_result | None = os.lstat(self.host(path))
        except (OSError, ValueError):  # ENOENT, ENOTDIR, EACCES, ENAMETOOLONG, a NUL byte
            result = None
        self._lstats[path] = result
        return result

    def stat(self, walk: Walk) -> os.stat_result | None:
        return self.lstat(walk.path)

    def _readlink(self, path: str) -> str:
        target = self._targets.get(path)
        if target is None:
            target = os.readlink(self.host(path))
            self._targets[path] = target
        return target

    def resolve(self, path: str, cwd: str = "/") -> Walk:
        if not path.startswith("/"):
            path = _join(cwd if cwd.startswith("/") else "/" + cwd, path)
        walk = self._walks.get(path)
        if walk is None:
            walk = self._walk(path)
            self._walks[path] = walk
        return walk

    def _walk(self, path: str) -> Walk:
        # a stack of (component, came from a link target); popped from the end
        todo = [(part, False) for part in reversed(_parts(path))]
        here, links, hops = "/", [], 0
        while todo:
            part, from_link = todo.pop()
            if part == "..":
                here = here.rsplit("/", 1)[0] or "/"
                continue
            step = _join(here, part)
            st = self.lstat(step)
            if st is None:
                return Walk(step, tuple(links), DANGLING if from_link else MISSING)
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                links.append(step)
                if hops > MAX_HOPS:
                    return Walk(step, tuple(links), LOOP)
                target = self._readlink(step)
                if not target:  # an empty link target is ENOENT for the kernel
                    return Walk(step, tuple(links), DANGLING)
                if target.startswith("/"):
                    here = "/"
                todo.extend((p, True) for p in reversed(_parts(target)))
                continue
            here = step
            if todo and not stat.S_ISDIR(st.st_mode):
                return Walk(step, tuple(links), NOTDIR)
        return Walk(here, tuple(links), self._status(here, path.endswith("/")))

    def _status(self, here: str, want_dir: bool) -> str:
        if here == "/":
            return DIR
        mode = self.lstat(here).st_mode  # type: ignore[union-attr]  # walked just now
        if stat.S_ISDIR(mode):
            return DIR
        if want_dir:
            return NOTDIR
        return FILE if stat.S_ISREG(mode) else OTHER

    def listdir(self, path: str, cwd: str = "/") -> tuple[str, ...]:
        """Sorted entry names of the directory PATH leads to (empty if it is none)."""
        walk = self.resolve(path, cwd)
        if walk.status != DIR:
            return ()
        names = self._listings.get(walk.path)
        if names is None:
            try:
                names = tuple(sorted(os.listdir(self.host(walk.path))))
            except OSError:
                names = ()
            self._listings[walk.path] = names
        return names

    def glob(self, pattern: str, cwd: str = "/") -> list[str]:
        """Paths matching PATTERN inside the root, sorted, as glob(3) finds them.

        Returned paths are spelled from the pattern (links in them are not resolved);
        like glob(3), a wildcard does not match a leading dot.
        """
        if not pattern.startswith("/"):
            pattern = _join(cwd, pattern)
        found = ["/"]
        for part in _parts(pattern):
            found = [p for base in found for p in self._glob_one(base, part)]
        return sorted(p for p in found if self.resolve(p).exists)

    def _glob_one(self, base: str, part: str) -> list[str]:
        if not any(ch in part for ch in "*?["):
            return [_join(base, part)]
        names = self.listdir(base)
        if not part.startswith("."):
            names = tuple(n for n in names if not n.startswith("."))
        return [_join(base, n) for n in fnmatch.filter(names, part)]


_walkers: dict[str, Walker] = {}


def walker(root: str) -> Walker:
    """The shared memoising Walker for ROOT (see forget())."""
    key = os.path.abspath(root)
    found = _walkers.get(key)
    if found is None:
        found = _walkers[key] = Walker(key)
    return found


def resolve(root: str, path: str, cwd: str = "/") -> Walk:
    """Resolve PATH inside ROOT the way the kernel would after chroot(ROOT)."""
    return walker(root).resolve(path, cwd)


def forget(root: str | None = None) -> None:
    """Drop memoised walks (for ROOT, or all): call after changing a tree."""
    if root is None:
        _walkers.clear()
    else:
        _walkers.pop(os.path.abspath(root), None)
