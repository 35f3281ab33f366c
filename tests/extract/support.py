"""What the extract tests share: running the helper, snapshots of trees."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

from acigen.treewalk import iter_tree
from tests.support.rootfs import busybox_tree

MODULE = "acigen.helpers.extract"

Entry = tuple[int, int, int, int, str, tuple[tuple[str, bytes], ...]]


def run_extract(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The helper by hand, as a user runs it."""
    return subprocess.run([sys.executable, "-m", MODULE, "--root", str(root), *args],
                          capture_output=True, text=True)


def run_step(step_file: Path, stamp: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The helper as ninja runs it."""
    return subprocess.run([sys.executable, "-m", MODULE, "--step", str(step_file),
                           "--stamp", str(stamp)], cwd=cwd, capture_output=True, text=True)


def snapshot(top: Path) -> dict[str, Entry]:
    """Every entry under TOP: mode, owner, group, mtime, content or link target, xattrs."""
    found = {"/": _entry(top, os.lstat(top))}
    for rel, st in iter_tree(str(top)):
        found["/" + rel] = _entry(top / rel, st)
    return found


def _entry(path: Path, st: os.stat_result) -> Entry:
    if stat.S_ISLNK(st.st_mode):
        what = "-> " + os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        what = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        what = ""
    names = sorted(os.listxattr(path, follow_symlinks=False))
    xattrs = tuple((n, os.getxattr(path, n, follow_symlinks=False)) for n in names)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, what, xattrs)


def paths(top: Path) -> set[str]:
    return set(snapshot(top))


OLD = 1_000_000_000  # a fixed mtime (2001), to see times survive


def write(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def small_image(dest: Path) -> Path:
    """A static busybox root with files, links and directories to prune."""
    top = busybox_tree(dest)
    write(top / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                              "www-data:x:33:33::/var/www:/bin/sh\n")
    for name in ("main.conf", "conf.d/a.conf", "conf.d/b.conf", "conf.d/.hidden.conf"):
        write(top / "etc/app" / name)
    (top / "etc/alternatives").mkdir()
    (top / "etc/alternatives/awk").symlink_to("/bin/busybox")
    (top / "usr/bin").mkdir(parents=True)
    (top / "usr/bin/awk").symlink_to("/etc/alternatives/awk")
    for name in ("doc/x/README.txt", "doc/y/z/NOTES.txt", "doc/y/z/pic.png"):
        write(top / "usr/share" / name)
    (top / "var/empty").mkdir(parents=True)
    (top / "var/lib/deep/er").mkdir(parents=True)
    write(top / "srv/data/file")
    (top / "data").symlink_to("srv/data")
    app = top / "var/lib/app"
    write(app / "state.db")
    write(app / "junk.tmp")
    os.chown(app, 1234, 5678)
    os.chmod(app, 0o2750)
    os.setxattr(app, "user.acigen-test", b"kept")
    for name in ("tmp/stale.txt", "dev/fakenode", "run/pid"):
        write(top / name)
    os.chmod(top / "tmp", 0o1777)
    for path in (top, top / "etc", top / "var", top / "var/lib", app, top / "tmp", top / "dev"):
        os.utime(path, (OLD, OLD))
    return top
