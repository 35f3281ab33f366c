"""Write safely inside an untrusted root filesystem.

Every path handed to `Root` is resolved the way the kernel resolves it after
chroot(ROOT): absolute symlinks restart at ROOT, `..` at ROOT stays at ROOT.
Nothing reached through a `Root` can be outside the root, whatever symlinks
the image holds.  The kernel does the work (openat2 with RESOLVE_IN_ROOT,
Linux >= 5.6); older kernels get a component-by-component walk with the same
semantics.

The final component of a path is never followed: callers act on it with
`dir_fd=` and `follow_symlinks=False`, so replacing a symlink replaces the
link, not what it points to.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from acigen.helpers.core.linux import openat2
from acigen.helpers.core.treeremove import Removed, remove_at

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_MAX_SYMLINKS = 40

_have_openat2: bool | None = None


def split(path: str) -> list[str]:
    """Components of a path inside a root, without empty and `.` parts."""
    return [part for part in path.split("/") if part not in ("", ".")]


def _openat2(dirfd: int, path: str, flags: int) -> int:
    return openat2(dirfd, path, flags | os.O_CLOEXEC, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)


def _kernel_has_openat2(rootfd: int) -> bool:
    global _have_openat2
    if _have_openat2 is None:
        try:
            os.close(_openat2(rootfd, ".", os.O_PATH))
            _have_openat2 = True
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EPERM):
                raise
            _have_openat2 = False
    return _have_openat2


class Root:
    """An open root directory; all lookups stay inside it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dirs: dict[str, int] = {}

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups ---------------------------------------------------------

    def open(self, path: str, flags: int = os.O_PATH) -> int:
        """Open PATH inside the root, following symlinks within it."""
        rel = "/".join(split(path)) or "."
        if _kernel_has_openat2(self.fd):
            return _openat2(self.fd, rel, flags)
        return self._walk_open(split(path), flags)

    def _walk_open(self, parts: list[str], flags: int) -> int:
        """Userspace equivalent of RESOLVE_IN_ROOT for old kernels."""
        stack = [os.dup(self.fd)]
        todo = list(parts)
        hops = 0
        try:
            while todo:
                name = todo.pop(0)
                if name == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                last = not todo
                st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > _MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/".join(parts))
                    target = os.readlink(name, dir_fd=stack[-1])
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                    todo[:0] = split(target) if target.strip("/") else []
                    if target.startswith("/") and not todo and last:
                        break
                    continue
                if last:
                    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
                stack.append(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW
                                     | os.O_CLOEXEC, dir_fd=stack[-1]))
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[-1])
        finally:
            for fd in stack:
                os.close(fd)

    def dir_fd(self, path: str, create: bool = False, mode: int = 0o755) -> int:
        """An O_PATH fd of directory PATH (cached; owned by this Root).

        With create=True missing directories are made, like `mkdir -p`,
        each one inside the root; a dangling symlink on the way is followed
        (inside the root) and its target directory made, so writing
        /lib/x where /lib -> usr/lib works before usr/lib exists.
        """
        key = "/".join(split(path))
        fd = self._dirs.get(key)
        if fd is not None:
            return fd
        try:
            fd = self.open(key, os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            if not create or not key:
                raise
            self._make_dirs(key, mode, _MAX_SYMLINKS)
            fd = self.open(key, os.O_PATH | os.O_DIRECTORY)
        self._dirs[key] = fd
        return fd

    def _make_dirs(self, key: str, mode: int, hops: int) -> None:
        parts = split(key)
        for depth in range(1, len(parts) + 1):
            name = parts[depth - 1]
            if name == "..":
                continue
            sub = "/".join(parts[:depth])
            try:
                os.close(self.open(sub, os.O_PATH | os.O_DIRECTORY))
                continue
            except FileNotFoundError:
                pass
            parent = self.dir_fd("/".join(parts[: depth - 1]))
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, mode, dir_fd=parent)
                continue
            if not stat.S_ISLNK(st.st_mode) or hops <= 0:
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), sub)
            target = os.readlink(name, dir_fd=parent)
            base = "" if target.startswith("/") else "/".join(parts[: depth - 1])
            self._make_dirs(f"{base}/{target}", mode, hops - 1)

    def parent(self, path: str, create: bool = False) -> tuple[int, str]:
        """(fd of the parent directory, final name) for PATH.

        The parent is resolved inside the root; the final name is returned
        as is, for the caller to act on without following it.
        """
        parts = split(path)
        if not parts or parts[-1] == "..":
            raise ValueError(f"{path!r} does not name an entry inside the root")
        return self.dir_fd("/".join(parts[:-1]), create=create), parts[-1]

    def lstat(self, path: str) -> os.stat_result | None:
        """lstat of PATH inside the root, or None when it does not exist."""
        try:
            parent, name = self.parent(path)
            return os.stat(name, dir_fd=parent, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def forget(self, path: str) -> None:
        """Drop cached directory fds at or below PATH (it was replaced)."""
        key = "/".join(split(path))
        for cached in [k for k in self._dirs if k == key or k.startswith(key + "/")]:
            os.close(self._dirs.pop(cached))

    # -- changes ---------------------------------------------------------

    def remove(self, path: str) -> None:
        """Remove whatever is at PATH (a directory with all it holds)."""
        parent, name = self.parent(path)
        _remove_at(parent, name)
        self.forget(path)

    def make_room(self, path: str, keep_dir: bool) -> int:
        """Make sure nothing but (with keep_dir) a directory is at PATH.

        Returns the parent's fd.  Used before writing an entry so that an
        existing symlink at PATH is replaced, never followed.
        """
        parent, name = self.parent(path, create=True)
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return parent
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return parent
        _remove_at(parent, name)
        self.forget(path)
        return parent


def _remove_at(dirfd: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    remove_at(dirfd, name, st, Removed(), name)


def is_executable(root_dir: str, path: str) -> bool:
    """Whether PATH, resolved inside ROOT_DIR as the image sees it, is a
    regular file someone may execute (what an app's exec[0] must be)."""
    with Root(root_dir) as root:
        try:
            fd = root.open(path, os.O_PATH)
        except OSError:
            return False
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
