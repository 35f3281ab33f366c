"""Write tar members into a root directory, safely and fast.

Every write happens inside ROOT: parent directories are resolved with
`rootfs.Root` (openat2 RESOLVE_IN_ROOT), and the final component is acted on
with `dir_fd=` without following it.  On top of that confinement the archive
is held to these rules, each failure naming the member:

- `..` in a member's path or a hard link's target is an error; a leading `/`
  is dropped (absolute names are made relative, as tar does).
- A member may not be written through a symlink that the archive itself
  created (`link -> /etc`, then `link/passwd`), nor may a hard link's target
  be reached through one.  A hard link to such a symlink is such a symlink
  too (`h` linked to `link`, then `h/passwd` is refused).
- A hard link must point at an earlier member of the archive.
- Device nodes are an error unless allowed (`devices`: "keep" or "skip").
- An unknown member type is an error (see tarread).

Over an existing tree (a layer over earlier layers) a member replaces what
is at its path: a directory over a directory merges; anything else replaces
the old entry, which is removed first (a symlink is replaced, never
followed).  Symlinks that EARLIER layers made are followed inside the root
when they are parents of a member: on a usr-merged base (`lib -> usr/lib`) an
archive's `lib/foo` lands in `usr/lib/foo`, and a `lib/` directory member
keeps the link (like `tar --keep-directory-symlink`) rather than replacing
the distribution's layout with an empty directory.  That cannot leave the
root: those links are resolved inside it.

Owners, modes (setuid/setgid/sticky included), xattrs (file capabilities
too) and mtimes are kept; owners only when running as root, like tar.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from collections.abc import Iterable

from acigen.errors import HelperError
from acigen.helpers.core import userns
from acigen.helpers.rootfs.root import Root, split
from acigen.helpers.tar.reader import Member, TarReader

DEVICE_POLICIES = ("error", "keep", "skip")
_DIR_CACHE = 256  # open directory fds kept (well under a 1024-fd limit)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NODE_TYPES = {"char": stat.S_IFCHR, "block": stat.S_IFBLK, "fifo": stat.S_IFIFO}


class Stats:
    def __init__(self) -> None:
        self.members = 0
        self.bytes = 0
        self.skipped_devices = 0
        self.kinds: dict[str, int] = {}


def member_parts(name: str, member: str, what: str = "its path") -> list[str]:
    """NAME's components inside the root; `..` anywhere is an error."""
    parts = split(name)
    if ".." in parts:
        raise HelperError(f"member {member!r}: {what} {name!r} leaves the root ('..')")
    return parts


def _root_only_xattr(name: str) -> bool:
    """trusted.* and security.* (but file capabilities) need root on the host."""
    return name.startswith("trusted.") or \
        (name.startswith("security.") and name != "security.capability")


class Extractor:
    """Apply the members of one archive, in order, to ROOT."""

    def __init__(self, root: Root, devices: str = "error") -> None:
        if devices not in DEVICE_POLICIES:
            raise ValueError(devices)
        self.root = root
        self.devices = devices
        self.same_owner = os.geteuid() == 0
        self._ids = (os.geteuid(), os.getegid())  # what a new entry gets by itself
        self.stats = Stats()
        self._dirs: OrderedDict[str, int] = OrderedDict()
        self._symlinks: set[str] = set()  # symlinks this archive made
        self._seen: set[str] = set()  # members so far, for hard links
        self._dir_times: dict[str, tuple[int, int]] = {}
        self._dir_modes: dict[str, int] = {}  # set last when we cannot write past them
        # directories known not to be setgid: what is made in them is ours:ours
        self._plain_dirs: set[str] = set()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    # -- one member ---------------------------------------------------------

    def apply(self, member: Member, reader: TarReader) -> None:
        parts = member_parts(member.name, member.name)
        self._refuse_archive_symlinks(parts, member.name)
        if self._unmapped(member):
            raise userns.unmapped_ids_error(f"member {member.name!r}", member.uid, member.gid)
        privileged = [k for k in member.xattrs if _root_only_xattr(k)]
        if privileged and userns.in_user_namespace():
            raise HelperError(f"member {member.name!r}: a rootless build cannot set its "
                              f"extended attribute {privileged[0]!r} (only root may): "
                              "build this image with sudo")
        if member.kind in ("char", "block") and self.devices != "keep":
            if self.devices == "skip":
                self.stats.skipped_devices += 1
                return
            raise HelperError(f"member {member.name!r}: device nodes are not allowed here",
                              hint='set "devices": true (keep them) or "skip" in the image step')
        if member.kind in ("char", "block") and userns.in_user_namespace():
            raise HelperError(f"member {member.name!r}: a rootless build cannot make device "
                              'nodes: set "devices": "skip" in the image step, or build with sudo')
        try:
            if not parts:
                self._root_entry(member)
            elif member.kind == "file":
                self._file(member, parts, reader)
            elif member.kind == "dir":
                self._dir(member, parts)
            elif member.kind == "symlink":
                self._symlink(member, parts)
            elif member.kind == "hardlink":
                self._hardlink(member, parts)
            else:
                self._node(member, parts)
        except OSError as exc:
            raise HelperError(f"member {member.name!r}: {exc.strerror or exc}") from None
        key = "/".join(parts)
        self._seen.add(key)
        if member.kind == "symlink" or self._links_to_own_symlink(member):
            self._symlinks.add(key)
        self.stats.members += 1
        self.stats.kinds[member.kind] = self.stats.kinds.get(member.kind, 0) + 1

    def _unmapped(self, member: Member) -> bool:
        """An owner the user namespace we run in cannot hold (rootless builds)."""
        return self.same_owner and userns.in_user_namespace() and \
            not userns.is_mapped(member.uid, member.gid)

    def _links_to_own_symlink(self, member: Member) -> bool:
        """A hard link to a symlink the archive made is that symlink too."""
        return member.kind == "hardlink" and "/".join(split(member.linkname)) in self._symlinks

    def _refuse_archive_symlinks(self, parts: list[str], member: str,
                                 what: str = "written through") -> None:
        if not self._symlinks:
            return
        prefix = ""
        for part in parts[:-1]:
            prefix = f"{prefix}/{part}" if prefix else part
            if prefix in self._symlinks:
                raise HelperError(f"member {member!r}: {what} {prefix!r}, "
                                  "a symlink this archive created")

    def _needs_chown(self, member: Member, parts: list[str]) -> bool:
        """False when a new entry will have the member's owner by itself
        (saves a syscall per file: most images are root's)."""
        if not self.same_owner:
            return False
        return (member.uid, member.gid) != self._ids or \
            "/".join(parts[:-1]) not in self._plain_dirs

    def _file(self, member: Member, parts: list[str], reader: TarReader) -> None:
        parent = self._parent(parts, member.name)
        name = parts[-1]
        mode = member.mode & 0o777  # exact: the umask is 0 while we unpack
        try:
            fd = os.open(name, _FILE_FLAGS, mode, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, name, parts)
            fd = os.open(name, _FILE_FLAGS, mode, dir_fd=parent)
        try:
            reader.copy_data(fd)
            if self._needs_chown(member, parts):
                os.fchown(fd, member.uid, member.gid)
            if member.mode & 0o7000:  # after chown, which clears setuid/setgid
                os.fchmod(fd, member.mode)
            for key, value in member.xattrs.items():  # after chown and writes: they
                os.setxattr(fd, key, value)  # drop file capabilities
            os.utime(fd, ns=(member.atime_ns, member.mtime_ns))
        finally:
            os.close(fd)
        self.stats.bytes += member.size

    def _dir(self, member: Member, parts: list[str]) -> None:
        parent = self._parent(parts, member.name)
        name, key = parts[-1], "/".join(parts)
        # a new directory in a plain one gets exactly the mode we ask for; as
        # root, we can write into it whatever that mode is
        exact = self.same_owner and not member.mode & 0o7000 and \
            "/".join(parts[:-1]) in self._plain_dirs
        made = self._make_or_merge(parent, name, parts, member.mode if exact else 0o700)
        if made is None:
            return  # an earlier layer's link to a directory: kept (see above)
        if self._needs_chown(member, parts) or (self.same_owner and not made):
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if not (made and exact):
            if self.same_owner:
                os.chmod(name, member.mode, dir_fd=parent)
            else:
                self._dir_modes[key] = member.mode  # keep it writable until the end
        self._set_xattrs(parent, name, member)
        self._dir_times[key] = (member.atime_ns, member.mtime_ns)
        if member.mode & stat.S_ISGID:
            self._plain_dirs.discard(key)
        else:
            self._plain_dirs.add(key)

    def _make_or_merge(self, parent: int, name: str, parts: list[str],
                       mode: int) -> bool | None:
        """mkdir NAME: True if made, False if one was there (merge), None if
        an earlier layer's symlink to a directory is there (kept)."""
        try:
            os.mkdir(name, mode, dir_fd=parent)
            return True
        except FileExistsError:
            pass
        key = "/".join(parts)
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            return False
        if stat.S_ISLNK(st.st_mode) and key not in self._symlinks and self._is_dir_inside(key):
            return None
        self._clear(parent, name, parts)
        os.mkdir(name, mode, dir_fd=parent)
        return True

    def _root_entry(self, member: Member) -> None:
        """`./` (or an ACI's `rootfs/`) describes the root directory itself."""
        if member.kind != "dir":
            raise HelperError(f"member {member.name!r}: only a directory can stand for the root")
        fd = self.root.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            if self.same_owner:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode)
            for key, value in member.xattrs.items():
                os.setxattr(fd, key, value)
        finally:
            os.close(fd)
        self._dir_times[""] = (member.atime_ns, member.mtime_ns)
        if not member.mode & stat.S_ISGID:
            self._plain_dirs.add("")

    def _symlink(self, member: Member, parts: list[str]) -> None:
        parent = self._parent(parts, member.name)
        name = parts[-1]
        try:
            os.symlink(member.linkname, name, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, name, parts)
            os.symlink(member.linkname, name, dir_fd=parent)
        if self.same_owner:
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        self._set_xattrs(parent, name, member)
        os.utime(name, ns=(member.atime_ns, member.mtime_ns), dir_fd=parent,
                 follow_symlinks=False)

    def _hardlink(self, member: Member, parts: list[str]) -> None:
        target = member_parts(member.linkname, member.name, "hard link target")
        self._refuse_archive_symlinks(target, member.name, "hard link target reached through")
        if not target or "/".join(target) not in self._seen:
            raise HelperError(f"member {member.name!r}: hard link to {member.linkname!r}, "
                              "which is not an earlier member of the archive")
        if target == parts:
            return
        source_dir = self._parent(target, member.name)
        parent = self._parent(parts, member.name)  # cannot evict source_dir: it is newest
        name = parts[-1]
        try:
            os.link(target[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent,
                    follow_symlinks=False)
        except FileExistsError:
            self._clear(parent, name, parts)
            source_dir = self._parent(target, member.name)
            os.link(target[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent,
                    follow_symlinks=False)

    def _node(self, member: Member, parts: list[str]) -> None:
        parent = self._parent(parts, member.name)
        name = parts[-1]
        mode = _NODE_TYPES[member.kind] | 0o600
        device = os.makedev(member.devmajor, member.devminor)
        try:
            os.mknod(name, mode, device, dir_fd=parent)
        except FileExistsError:
            self._clear(parent, name, parts)
            os.mknod(name, mode, device, dir_fd=parent)
        self._set_attrs(parent, name, member)
        os.utime(name, ns=(member.atime_ns, member.mtime_ns), dir_fd=parent,
                 follow_symlinks=False)

    # -- metadata -----------------------------------------------------------

    def _set_attrs(self, parent: int, name: str, member: Member) -> None:
        """Owner, mode and xattrs of NAME, which we just made (not a symlink)."""
        if self.same_owner:
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        os.chmod(name, member.mode, dir_fd=parent)
        self._set_xattrs(parent, name, member)

    def _set_xattrs(self, parent: int, name: str, member: Member) -> None:
        if not member.xattrs:
            return
        # setxattr has no *at form: name the entry through the parent's fd,
        # without following the final component
        path = f"/proc/self/fd/{parent}/{name}"
        for key, value in member.xattrs.items():
            os.setxattr(path, key, value, follow_symlinks=False)

    def finish(self) -> None:
        """Directory times last: writing into a directory changes its mtime
        (and, not as root, modes we could not write past)."""
        for key, times in self._dir_times.items():
            if not key:
                fd = self.root.open(".", os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.utime(fd, ns=times)
                finally:
                    os.close(fd)
                continue
            parts = key.split("/")
            try:
                parent = self._parent(parts, key, create=False)
                st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError, HelperError):
                continue  # replaced by a later member
            if not stat.S_ISDIR(st.st_mode):
                continue
            if key in self._dir_modes:
                os.chmod(parts[-1], self._dir_modes[key], dir_fd=parent)
            os.utime(parts[-1], ns=times, dir_fd=parent, follow_symlinks=False)

    # -- directories --------------------------------------------------------

    def _parent(self, parts: list[str], member: str, create: bool = True) -> int:
        """An fd of the directory holding PARTS, made (like mkdir -p) if missing."""
        return self._dir_fd(parts[:-1], member, create)

    def _dir_fd(self, parts: list[str], member: str, create: bool) -> int:
        key = "/".join(parts)
        fd = self._dirs.get(key)
        if fd is not None:
            self._dirs.move_to_end(key)
            return fd
        try:
            fd = self.root.open(key, os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            if not create or not parts:
                raise
            fd = self._make_dir(parts, member)
        except NotADirectoryError:
            raise HelperError(f"member {member!r}: {key!r} is not a directory") from None
        self._dirs[key] = fd
        if len(self._dirs) > _DIR_CACHE:
            os.close(self._dirs.popitem(last=False)[1])
        return fd

    def _make_dir(self, parts: list[str], member: str) -> int:
        """A directory the archive did not list before its contents, and its
        missing parents (like mkdir -p), however deep: the deepest existing
        one found by bisection (a path that resolves has parents that do),
        the rest made and opened one below the other, never resolved again."""
        have, missing = 0, len(parts)  # parts[:have] resolves, parts[:missing] does not
        while missing - have > 1:
            middle = (have + missing) // 2
            if self._is_dir_inside("/".join(parts[:middle])):
                have = middle
            else:
                missing = middle
        fd = self._dir_fd(parts[:have], member, False)  # the cache's: not closed here
        for depth in range(have, len(parts)):
            try:
                child = self._make_one_dir(fd, parts, depth, member)
            finally:
                if depth > have:  # ours, not the cache's
                    os.close(fd)
            fd = child
        return fd

    def _make_one_dir(self, parent: int, parts: list[str], depth: int, member: str) -> int:
        """Make parts[depth] in PARENT (parts[:depth]); an O_PATH fd of it."""
        name, key = parts[depth], "/".join(parts[:depth + 1])
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
            if "/".join(parts[:depth]) in self._plain_dirs:
                self._plain_dirs.add(key)
        except FileExistsError:
            pass  # a dangling symlink, probably: the open below says so
        try:  # made just now, by us: opened without following anything
            return os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                           dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError):
            raise HelperError(f"member {member!r}: cannot make directory {key!r}: "
                              "something else is in the way") from None

    def _is_dir_inside(self, key: str) -> bool:
        try:
            fd = self.root.open(key, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            return False
        os.close(fd)
        return True

    def _clear(self, parent: int, name: str, parts: list[str]) -> None:
        """Remove whatever is at PARTS so that a new entry can take its place."""
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        key = "/".join(parts)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent)
            self._symlinks.discard(key)
            return
        self.root.remove(key)
        for cached in [k for k in self._dirs if k == key or k.startswith(key + "/")]:
            os.close(self._dirs.pop(cached))
        # what we knew of the removed directory and below no longer holds
        inside = key + "/"
        self._symlinks = {s for s in self._symlinks if not s.startswith(inside)}
        self._seen = {s for s in self._seen if not s.startswith(inside)}
        self._plain_dirs = {d for d in self._plain_dirs if d != key and not d.startswith(inside)}
        for known in (self._dir_modes, self._dir_times):
            for gone in [k for k in known if k == key or k.startswith(inside)]:
                del known[gone]


def extract(reader: TarReader, members: Iterable[Member], extractor: Extractor) -> Stats:
    """Apply MEMBERS (from READER, maybe renamed) with EXTRACTOR."""
    for member in members:
        extractor.apply(member, reader)
    extractor.finish()
    return extractor.stats
