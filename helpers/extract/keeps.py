"""The keep set of an `extract` step: which paths of an image survive.

Every path is resolved inside the image root the way the kernel would after
chroot (acigen.helpers.rootwalk): a symlink can never lead a keep, and so a
delete, out of the root.  The set holds physical in-root paths only (no
symlink in any parent component), in three kinds:

- trees: kept with everything below them (a kept directory);
- entries: kept themselves (a file, a symlink, a directory that holds
  something kept, a mount point);
- their parent directories, which `parents()` derives.

Keeping a path keeps every symlink on the way to it and what the last one
points to; keeping a directory keeps the symlinks inside it and, again, what
they point to, so nothing kept dangles because of the prune.

Glob syntax (a keep containing `*`, `?` or `[`): matched one path component
at a time with fnmatch rules (`*` and `?` never match `/`; they do match a
leading dot); a component that is exactly `**` matches zero or more
directories, without descending into symlinked directories.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from acigen.errors import HelperError
from acigen.helpers.rootfs.walk import DIR, Walk, Walker
from acigen.treewalk import iter_tree

GLOB_CHARS = frozenset("*?[")
# where an executor mounts proc, sysfs, devices and tmpfs: the empty
# directories stay (with their modes), so mounts find them and programs find /tmp
MOUNT_POINTS = ("/dev", "/proc", "/run", "/sys", "/tmp")


def is_glob(keep: str) -> bool:
    return any(ch in GLOB_CHARS for ch in keep)


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


def _dirname(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


@dataclass
class KeepSet:
    """What to keep inside one root; see the module docstring."""

    walker: Walker
    entries: set[str] = field(default_factory=set)
    trees: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    # -- adding -----------------------------------------------------------

    def keep(self, path: str, quiet: bool = False) -> bool:
        """Keep PATH as the kernel would reach it; False if nothing is there."""
        walk = self.walker.resolve(path)
        if walk.exists:
            self._keep_walk(walk)
            return True
        entry = self._entry_itself(path)
        if entry is None:
            return False
        # the name is a symlink that leads nowhere (or loops): keep the link as it is
        self.entries.update(walk.links)
        self.entries.add(entry)
        if not quiet:
            self.warnings.append(f"keep {path}: a symlink to nothing ({walk.status} at "
                                 f"{walk.path}), kept as it is")
        return True

    def keep_entry(self, path: str) -> None:
        """Keep PATH itself, not following its last component (a closure file)."""
        entry = self._entry_itself(path)
        if entry is None:
            raise HelperError(f"{path}: listed in the run-time closure but not in the image")
        self.entries.add(entry)

    def keep_mount_point(self, path: str) -> None:
        """Keep the directory PATH (without its contents) if the image has one."""
        walk = self.walker.resolve(path)
        if walk.status == DIR:
            self._keep_links(walk.links)
            self.entries.add(walk.path)

    def _keep_walk(self, walk: Walk) -> None:
        self._keep_links(walk.links)
        if walk.status == DIR:
            self._keep_tree(walk.path)
        else:
            self.entries.add(walk.path)

    def _keep_links(self, links: tuple[str, ...]) -> None:
        self.entries.update(links)

    def _entry_itself(self, path: str) -> str | None:
        """The physical path of PATH's last component, if something is there;
        the links in its parent directories are kept on the way."""
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name in ("", ".", ".."):
            walk = self.walker.resolve(path)
            return walk.path if walk.exists else None
        parent = self.walker.resolve(_dirname(path.rstrip("/")))
        if parent.status != DIR:
            return None
        entry = _join(parent.path, name)
        if self.walker.lstat(entry) is None:
            return None
        self._keep_links(parent.links)
        return entry

    def _keep_tree(self, top: str) -> None:
        """Keep directory TOP with all it holds, and what its symlinks point to."""
        if self._inside_tree(top):
            return
        self.trees = {t for t in self.trees if not t.startswith(_join(top, ""))}
        self.trees.add(top)
        host = self.walker.host(top)
        for rel, st in iter_tree(host):
            if stat.S_ISLNK(st.st_mode):
                # a link to inside TOP ends at _inside_tree; one to nothing stays as it is
                self.keep(_join(top, rel), quiet=True)

    def _inside_tree(self, path: str) -> bool:
        return any(prefix in self.trees for prefix in self._prefixes(path))

    @staticmethod
    def _prefixes(path: str) -> Iterator[str]:
        parts = _components(path)
        yield "/"
        for depth in range(1, len(parts) + 1):
            yield "/" + "/".join(parts[:depth])

    # -- reading ----------------------------------------------------------

    def parents(self) -> set[str]:
        """Every directory that holds something kept ('/' included)."""
        found = {"/"}
        for path in self.entries | self.trees:
            parts = _components(path)
            for depth in range(1, len(parts)):
                found.add("/" + "/".join(parts[:depth]))
        return found

    def covers(self, path: str) -> bool:
        """Whether PATH (physical) survives the prune."""
        return path in self.entries or self._inside_tree(path) or path in self.parents()


# -- globs ------------------------------------------------------------------

def glob(walker: Walker, pattern: str) -> list[str]:
    """Paths in the root matching PATTERN (see the module docstring), sorted;
    spelled from the pattern, so the links on the way can be kept."""
    found = ["/"]
    for part in _components(pattern):
        found = sorted({match for base in found for match in _glob_part(walker, base, part)})
    return found


def _glob_part(walker: Walker, base: str, part: str) -> Iterator[str]:
    if part == "**":
        yield from _subdirs(walker, base)
    elif is_glob(part):
        for name in walker.listdir(base):
            if fnmatchcase(name, part):
                yield _join(base, name)
    elif walker.resolve(_join(base, part)).exists or _is_link(walker, base, part):
        yield _join(base, part)


def _is_link(walker: Walker, base: str, name: str) -> bool:
    parent = walker.resolve(base)
    st = walker.lstat(_join(parent.path, name)) if parent.status == DIR else None
    return st is not None and stat.S_ISLNK(st.st_mode)


def _subdirs(walker: Walker, base: str) -> Iterator[str]:
    """BASE and every directory below it, not entering symlinked directories."""
    top = walker.resolve(base)
    if top.status != DIR:
        return
    yield base
    for rel, st in iter_tree(walker.host(top.path)):
        if stat.S_ISDIR(st.st_mode):
            yield _join(base, rel)
