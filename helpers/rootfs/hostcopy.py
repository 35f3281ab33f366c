"""Copy host files into an image root, every write confined to the root.

Regular files keep content, mode (setuid too), owner, xattrs and mtime;
symlinks stay symlinks; directories are made with the host directory's mode
and owner.  A symlink in the image is followed only inside the image; the
final component is never followed (an image symlink there is replaced).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from acigen.errors import HelperError
from acigen.helpers.core.userns import host_owner
from acigen.helpers.rootfs.root import Root, split
from acigen.treewalk import iter_tree


class Copier:
    """Copies into one root; remembers hard links it made."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self.linked: dict[tuple[int, int], str] = {}  # host (dev, ino) -> image path
        self.replaced: list[str] = []

    def ensure_parents(self, dst: str, model_on_host: bool = True) -> None:
        """Make DST's missing parent directories; with MODEL_ON_HOST they get
        the mode and owner of the host's directories of the same names."""
        parts = split(dst)[:-1]
        for depth in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:depth])
            if self.root.lstat(sub) is None:
                self._mkdir(sub, sub if model_on_host else None)

    def _mkdir(self, dst: str, model: str | None) -> None:
        st = _host_dir_stat(model)
        parent, name = self.root.parent(dst, create=True)
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            return
        if st is not None:
            os.chown(name, *host_owner(st), dir_fd=parent, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent)
        else:
            os.chmod(name, 0o755, dir_fd=parent)

    def copy(self, src: str, dst: str, st: os.stat_result | None = None,
             model_on_host: bool = True) -> None:
        """Copy host entry SRC (not followed) to image path DST.

        A path the image's own symlinks make impossible (a loop, a file where
        a directory should be) is the user's problem to see, in one line.
        """
        try:
            self._copy(src, dst, st or os.lstat(src), model_on_host)
        except OSError as exc:
            if exc.filename and not str(exc.filename).startswith(src):
                raise HelperError(f"cannot copy {src} to {dst} in the image: "
                                  f"{exc.strerror} ({exc.filename!s} in the image)") from None
            raise

    def _copy(self, src: str, dst: str, st: os.stat_result, model_on_host: bool) -> None:
        self.ensure_parents(dst, model_on_host)
        if stat.S_ISLNK(st.st_mode):
            self._symlink(src, dst)
        elif stat.S_ISDIR(st.st_mode):
            self._directory(dst, st)
        elif stat.S_ISREG(st.st_mode):
            self._regular(src, dst, st)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            parent = self.root.make_room(dst, keep_dir=False)
            name = split(dst)[-1]
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=parent)
            _finish(parent, name, st, None)
        # sockets cannot be copied and are never needed in an image

    def copy_tree(self, src: str, dst: str) -> list[str]:
        """Copy directory SRC to DST recursively; returns the host files read."""
        read = []
        self.copy(src, dst, os.stat(src), model_on_host=False)
        for rel, _st in iter_tree(src):  # parents first, iteratively
            host = os.path.join(src, rel)
            self.copy(host, os.path.normpath(os.path.join(dst, rel)), model_on_host=False)
            read.append(host)
        return read

    def _symlink(self, src: str, dst: str) -> None:
        target = os.readlink(src)
        existing = self.root.lstat(dst)
        if existing is not None and (stat.S_ISDIR(existing.st_mode) or
                                     stat.S_ISLNK(existing.st_mode)):
            return  # the image's own structure wins; we write through it
        parent = self.root.make_room(dst, keep_dir=False)
        name = split(dst)[-1]
        os.symlink(target, name, dir_fd=parent)
        st = os.lstat(src)
        os.chown(name, *host_owner(st), dir_fd=parent, follow_symlinks=False)

    def _directory(self, dst: str, st: os.stat_result) -> None:
        parent = self.root.make_room(dst, keep_dir=True)
        name = split(dst)[-1] if split(dst) else "."
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent)
        os.chown(name, *host_owner(st), dir_fd=parent, follow_symlinks=False)
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent)

    def _regular(self, src: str, dst: str, st: os.stat_result) -> None:
        existing = self.root.lstat(dst)
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise HelperError(f"cannot copy {src} to {dst}: a directory is there in the image")
        if existing is not None:
            self.replaced.append(dst)
        parent = self.root.make_room(dst, keep_dir=False)
        name = split(dst)[-1]
        first = self.linked.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
        if first is not None:
            src_parent, src_name = self.root.parent(first)
            os.link(src_name, name, src_dir_fd=src_parent, dst_dir_fd=parent,
                    follow_symlinks=False)
            return
        with open(src, "rb") as source:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                _copy_data(source.fileno(), fd, st.st_size)
                _finish(fd, None, st, source.fileno())
            finally:
                os.close(fd)
        if st.st_nlink > 1:
            self.linked[(st.st_dev, st.st_ino)] = dst


def _host_dir_stat(path: str | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


def _copy_data(src: int, dst: int, size: int) -> None:
    copied = 0
    while copied < size or size == 0:
        try:
            n = os.copy_file_range(src, dst, 1 << 30)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            n = os.sendfile(dst, src, None, 1 << 30)
        if n == 0:
            break
        copied += n


def _finish(target: int, name: str | None, st: os.stat_result, xattr_src: int | None) -> None:
    """Owner, xattrs, then mode (chown clears setuid bits), then times."""
    if name is None:
        os.fchown(target, *host_owner(st))
        if xattr_src is not None:
            _copy_xattrs(xattr_src, target)
        os.fchmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))
        return
    os.chown(name, *host_owner(st), dir_fd=target, follow_symlinks=False)
    os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=target)
    os.utime(name, ns=(st.st_mtime_ns, st.st_mtime_ns), dir_fd=target, follow_symlinks=False)


def _copy_xattrs(src: int, dst: int) -> None:
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for attr in names:
        if attr.startswith(("trusted.overlay.", "user.overlay.")):
            continue  # overlayfs' own bookkeeping, never image content
        try:
            os.setxattr(dst, attr, os.getxattr(src, attr))
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EPERM):
                raise
