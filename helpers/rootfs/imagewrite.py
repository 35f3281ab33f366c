"""Make files, directories and symlinks with given contents inside an image root.

Every path is resolved inside the root (rootfs.Root); the final component is
never followed, so an image symlink where we write is replaced, not written
through.  Modes are set explicitly (the umask never decides an image's
modes) and file times can be pinned, so a rebuild gives the same tree.
"""

from __future__ import annotations

import os
import stat

from acigen.errors import HelperError
from acigen.helpers.rootfs.root import Root, split


class ImageWriter:
    """Writes into one root."""

    def __init__(self, root: Root) -> None:
        self.root = root

    def exists(self, path: str) -> bool:
        return self.root.lstat(path) is not None

    def mkdirs(self, path: str, mode: int = 0o755) -> None:
        """Like `mkdir -p`; directories already there keep their modes."""
        parts = split(path)
        for depth in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:depth])
            st = self.root.lstat(sub)
            if st is None:
                # create: a dangling image symlink above (/usr/lib -> x) is
                # followed inside the root and its target made
                parent, name = self.root.parent(sub, create=True)
                os.mkdir(name, 0o700, dir_fd=parent)
                os.chmod(name, mode, dir_fd=parent)
            elif not (stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                raise HelperError(f"cannot make directory {sub} in the image: "
                                  "a file is in the way")

    def file(self, path: str, data: bytes, mode: int = 0o644,
             mtime_ns: int | None = None) -> None:
        """Write DATA at PATH (replacing a file or symlink there)."""
        parent = self._room_for(path)
        name = split(path)[-1]
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)

    def symlink(self, path: str, target: str) -> None:
        """Make PATH a symlink to TARGET (replacing a file or symlink there)."""
        st = self.root.lstat(path)
        if st is not None and stat.S_ISLNK(st.st_mode):
            parent, name = self.root.parent(path)
            if os.readlink(name, dir_fd=parent) == target:
                return
        parent = self._room_for(path)
        os.symlink(target, split(path)[-1], dir_fd=parent)

    def describe(self, path: str) -> str | None:
        """What the image has at PATH, for messages: None, 'a file' or '-> target'."""
        st = self.root.lstat(path)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            parent, name = self.root.parent(path)
            return "-> " + os.readlink(name, dir_fd=parent)
        return "a directory" if stat.S_ISDIR(st.st_mode) else "a file"

    def _room_for(self, path: str) -> int:
        try:
            self.root.dir_fd(os.path.dirname(path))  # cached: the usual case, one lookup
        except (FileNotFoundError, NotADirectoryError):
            self.mkdirs(os.path.dirname(path))
        st = self.root.lstat(path)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise HelperError(f"cannot write {path} in the image: a directory is there")
        return self.root.make_room(path, keep_dir=False)
