"""Trees to pack, and a comparison of a tree with its extracted image."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

EPOCH = 1_700_000_000  # 2023-11-14; files newer than this are clamped
FUTURE = 4_102_444_800  # 2100-01-01
PAST = 631_152_000  # 1990-01-01
BIG_UID, BIG_GID = 3_000_000, 4_000_000  # more than ustar's 7 octal digits
LONG_SPLIT = b"a" * 60 + b"/" + b"b" * 60  # > 100 bytes, fits ustar's prefix + name
LONG_PAX = b"d" * 120 + b"/" + b"e" * 120 + b"/" + b"f" * 80  # > 255 bytes: needs pax
NON_UTF8 = b"caf\xe9-\xff\xfe"
NON_UTF8_LONG = b"\xe9" * 30 + b"/" + b"\xff" * 150  # long and not UTF-8: hdrcharset
MANIFEST = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/pack-test",
            "labels": [{"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}]}


def write_manifest(path: Path, manifest: dict | None = None) -> Path:
    path.write_text(json.dumps(manifest or MANIFEST))
    return path


def _words() -> list[bytes]:
    rng = random.Random(0)
    return [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
            for _ in range(3000)]


WORDS = _words()


def text(seed: int, size: int) -> bytes:
    """Compressible but not trivial bytes (words from a seeded generator)."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(WORDS, k=256)) + b"\n"
    return bytes(out[:size])


def _touch(path: bytes, data: bytes = b"", mode: int = 0o644, owner: tuple[int, int] = (0, 0),
           mtime: int = PAST) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)
    os.chown(path, *owner)
    os.chmod(path, mode)  # after chown, which clears setuid
    os.utime(path, (mtime, mtime))


def special_tree(root: Path) -> Path:
    """A root holding every kind of entry an image can hold, and then some."""
    r = os.fsencode(root)
    os.makedirs(r + b"/tmp")
    os.chmod(r + b"/tmp", 0o1777)
    os.makedirs(r + b"/srv/shared")
    os.chmod(r + b"/srv/shared", 0o2775)
    os.chown(r + b"/srv/shared", 0, 50)
    os.makedirs(r + b"/root")
    os.chmod(r + b"/root", 0o700)
    _touch(r + b"/bin/su", b"\x7fELF fake su", 0o4755)
    _touch(r + b"/bin/wall", b"fake wall", 0o2755, (0, 5))
    _touch(r + b"/bin/ping", b"fake ping", 0o755)
    subprocess.run(["setcap", "cap_net_raw+ep", os.fsdecode(r + b"/bin/ping")], check=True)
    _touch(r + b"/etc/empty")
    _touch(r + b"/etc/new", b"made in the future", mtime=FUTURE)
    _touch(r + b"/home/user/notes", b"mine", 0o600, (1000, 1000))
    _touch(r + b"/home/big/ids", b"big ids", 0o640, (BIG_UID, BIG_GID))
    os.setxattr(r + b"/home/user/notes", "user.comment", b"bin\0ary\nvalue\xff")
    os.setxattr(r + b"/home/user", "user.empty", b"")
    _touch(r + b"/data/large", text(7, 6 * 1024 * 1024 + 123))
    _touch(r + b"/data/links/one", b"hard linked")
    os.link(r + b"/data/links/one", r + b"/data/links/two")
    os.link(r + b"/data/links/one", r + b"/data/three")
    os.symlink(b"../bin/su", r + b"/etc/su-link")
    os.symlink(b"/etc/new", r + b"/etc/abs-link")
    os.symlink(b"/nowhere/at/all", r + b"/etc/dangling")
    os.symlink(b"x" * 150, r + b"/etc/long-target")
    os.makedirs(r + b"/dev")
    os.mknod(r + b"/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(r + b"/dev/loop0", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    os.mknod(r + b"/dev/big", 0o600 | stat.S_IFCHR, os.makedev(250, 1_000_000))
    os.mkfifo(r + b"/dev/fifo", 0o620)
    _touch(r + b"/long/" + LONG_SPLIT, b"split name")
    _touch(r + b"/long/" + LONG_PAX, b"pax name")
    _touch(r + b"/names/" + NON_UTF8, b"latin-1")
    _touch(r + b"/names/" + NON_UTF8_LONG, b"long latin-1")
    with socket.socket(socket.AF_UNIX) as sock:  # sockets are skipped
        sock.bind(os.fsdecode(r + b"/tmp/sock"))
    for path in (r + b"/etc", r + b"/tmp"):
        os.utime(path, (FUTURE, FUTURE))
    return root


def text_tree(root: Path, files: int, size: int, seed: int = 1) -> Path:
    """FILES files of about SIZE bytes each, in a few directories."""
    for i in range(files):
        path = root / f"d{i % 7}" / f"f{i:05d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text(seed * 100_000 + i, size + (i * 7919) % size))
    return root


# -- comparing --------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    kind: str
    mode: int
    uid: int
    gid: int
    mtime: int
    content: str | None
    xattrs: tuple[tuple[str, bytes], ...]


def _kind(st: os.stat_result) -> str:
    return {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
            stat.S_IFCHR: "chr", stat.S_IFBLK: "blk", stat.S_IFIFO: "fifo",
            stat.S_IFSOCK: "sock"}[stat.S_IFMT(st.st_mode)]


def _xattrs(path: bytes) -> tuple[tuple[str, bytes], ...]:
    names = os.listxattr(path, follow_symlinks=False)
    return tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names))


def describe(root: Path, epoch: int | None = None) -> tuple[dict[bytes, Node], list[set[bytes]]]:
    """Every path under ROOT (and ROOT as b''), and the groups of hard links.
    With EPOCH, mtimes are given as a clamped pack would store them."""
    top = os.fsencode(root)
    nodes: dict[bytes, Node] = {}
    inodes: dict[int, set[bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [b"", *dirnames, *filenames] if dirpath == top else [*dirnames, *filenames]:
            path = os.path.join(dirpath, name) if name else dirpath
            rel = os.path.relpath(path, top) if path != top else b""
            st = os.lstat(path)
            kind = _kind(st)
            if kind == "sock":
                continue
            if kind == "file":
                content = hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest()
            elif kind == "symlink":
                content = os.fsdecode(os.readlink(path))
            elif kind in ("chr", "blk"):
                content = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
            else:
                content = None
            mtime = int(st.st_mtime) if epoch is None else min(int(st.st_mtime), epoch)
            nodes[rel] = Node(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                              mtime, content, _xattrs(path))
            if kind != "dir" and st.st_nlink > 1:
                inodes.setdefault(st.st_ino, set()).add(rel)
    return nodes, sorted(inodes.values(), key=sorted)


def extract(image: Path, dest: Path) -> Path:
    """Unpack an image with GNU tar, keeping everything it can."""
    dest.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf",
                    str(image), "-C", str(dest)], check=True)
    return dest
