"""Root filesystems for tests, made here and cached between test runs.

A Debian bookworm minbase tree comes from debootstrap (about 30 s, once);
the tarball is kept in the test cache ($ACIGEN_TEST_CACHE, default
~/.cache/acigen-tests) so later runs and other tests reuse it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

MIRROR = os.environ.get("ACIGEN_TEST_MIRROR", "http://deb.debian.org/debian")


def cache_dir() -> Path:
    path = Path(os.environ.get("ACIGEN_TEST_CACHE",
                               Path.home() / ".cache" / "acigen-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _locked_build(name: str, build) -> Path:
    """Build cache_dir()/name once, even with several test processes."""
    target = cache_dir() / name
    with open(cache_dir() / (name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            tmp = target.with_name(target.name + ".tmp")
            if tmp.exists():
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
            build(tmp)
            tmp.rename(target)
    return target


def debian_minbase_tarball() -> Path:
    """bookworm minbase as an uncompressed tar (numeric owners, xattrs)."""
    def build(out: Path) -> None:
        tree = out.with_name("debootstrap.tmp")
        if tree.exists():
            shutil.rmtree(tree)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(tree), MIRROR],
                       check=True, stdout=subprocess.DEVNULL)
        # apt's lists and caches are big and change daily; a test rootfs
        # does not need them
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for child in (tree / sub).glob("*"):
                if child.is_file():
                    child.unlink()
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                        "--sort=name", "-C", str(tree), "-cf", str(out), "."], check=True)
        shutil.rmtree(tree)
    return _locked_build("bookworm-minbase.tar", build)


def debian_minbase_tree(dest: Path) -> Path:
    """A fresh copy of the minbase tree at DEST."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf",
                    str(debian_minbase_tarball()), "-C", str(dest)], check=True)
    return dest


def busybox_tree(dest: Path) -> Path:
    """A tiny root: Debian's static busybox with its applet links."""
    busybox = Path("/bin/busybox")
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    out = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True)
    for applet in out.stdout.split():
        link = dest / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    for sub in ("etc", "tmp", "proc", "sys", "dev", "root"):
        (dest / sub).mkdir(exist_ok=True)
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    return dest


def tar_of(tree: Path, out: Path, compression: str = "") -> Path:
    """Tar TREE into OUT with GNU tar (owners numeric, names sorted)."""
    flag = {"": "", "gzip": "z", "bzip2": "j", "xz": "J", "zstd": "--zstd"}[compression]
    cmd = ["tar", "--numeric-owner", "--xattrs", "--sort=name", "-C", str(tree)]
    cmd += [flag] if flag.startswith("--") else []
    cmd += ["-c" + (flag if not flag.startswith("--") else "") + "f", str(out), "."]
    subprocess.run(cmd, check=True)
    return out


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()
