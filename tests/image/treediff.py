"""Describe a directory tree completely, to compare two extractions."""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

from acigen.treewalk import iter_tree


def _xattrs(path: str) -> dict[str, bytes]:
    names = sorted(os.listxattr(path, follow_symlinks=False))
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in names}


def _content(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def describe(top: str) -> dict[str, dict[str, Any]]:
    """path -> type, mode, owner, mtime, target or content, device, xattrs,
    and the hard link group (the first path sharing the inode).  The root
    itself is included as ''."""
    entries: dict[str, dict[str, Any]] = {}
    first_of_inode: dict[int, str] = {}
    items = [("", os.lstat(top)), *iter_tree(top)]
    for rel, st in items:
        path = os.path.join(top, rel) if rel else top
        entry: dict[str, Any] = {
            "type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid, "mtime_ns": st.st_mtime_ns,
            "xattrs": _xattrs(path),
        }
        if stat.S_ISLNK(st.st_mode):
            entry["target"] = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            entry["size"] = st.st_size
            entry["sha256"] = _content(path)
            entry["links"] = first_of_inode.setdefault(st.st_ino, rel)
            entry["nlink"] = st.st_nlink
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            entry["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
        entries[rel] = entry
    return entries


def differences(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> list[str]:
    """Readable differences between two descriptions (empty when equal)."""
    out = [f"only in first: {p!r}" for p in sorted(a.keys() - b.keys())]
    out += [f"only in second: {p!r}" for p in sorted(b.keys() - a.keys())]
    for path in sorted(a.keys() & b.keys()):
        for key in sorted(a[path].keys() | b[path].keys()):
            if a[path].get(key) != b[path].get(key):
                out.append(f"{path!r} {key}: {a[path].get(key)!r} != {b[path].get(key)!r}")
    return out
