"""Fixture roots that the real glibc loader can read: gcc-built objects, patchelf edits,
and the host's own ld.so and libc.so.6 copied in with Debian's usr-merged layout.

The oracle runs that loader inside the root in trace mode (`ld.so --list`, which maps
the libraries but runs no code of theirs) and reports what it mapped, as (dev, inode).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from acigen.helpers.rootfs.walk import Walker
from tests.elf.fixtures import Tree

HOST_MULTI = "/lib/x86_64-linux-gnu"
CHROOT = "/usr/sbin/chroot"
LOADER = "/lib64/ld-linux-x86-64.so.2"
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"


class Builder:
    """Compiles one stub library and one stub program, then copies and patches them."""

    def __init__(self, work: Path, cc: str = "gcc") -> None:
        self.work, self.cc = work, cc
        work.mkdir(parents=True, exist_ok=True)
        src = work / "stub.c"
        src.write_text("int stub(void) { return 0; }\nint main(void) { return 0; }\n")
        self.lib_stub = work / "stub.so"
        self.exe_stub = work / "stub"
        subprocess.run([cc, "-shared", "-fPIC", "-o", self.lib_stub, src], check=True)
        subprocess.run([cc, "-o", self.exe_stub, src], check=True)

    def object(self, tree: Tree, path: str, *, exe: bool = False, soname: str | None = None,
               needed: tuple[str, ...] = (), rpath: str | None = None,
               runpath: str | None = None, ldflags: tuple[str, ...] = ()) -> str:
        host = tree.host(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        if ldflags:  # flags only the linker can set (filters, nodefaultlib)
            cmd = [self.cc, "-o", str(host), str(self.work / "stub.c"), *ldflags]
            subprocess.run(cmd if exe else [*cmd, "-shared", "-fPIC"], check=True)
        else:
            shutil.copy(self.exe_stub if exe else self.lib_stub, host)
        # one edit per patchelf call: 0.14 mixes up string offsets when edits combine
        edits: list[list[str]] = []
        if not exe:
            edits.append(["--set-soname", soname or path.rsplit("/", 1)[1]])
        if runpath is not None:
            edits.append(["--set-rpath", runpath])
        if rpath is not None:
            edits.append(["--force-rpath", "--set-rpath", rpath])
        if needed:
            edits.append([arg for name in needed for arg in ("--add-needed", name)])
        for edit in edits:
            subprocess.run(["patchelf", *edit, str(host)], check=True)
        return path


def host_glibc(tree: Tree) -> None:
    """The host's loader and libc in Debian 12's layout (it is a Debian 12 host)."""
    tree.link("/lib", "usr/lib")
    tree.link("/lib64", "usr/lib64")
    tree.link("/usr/lib64/ld-linux-x86-64.so.2", f"{HOST_MULTI}/ld-linux-x86-64.so.2")
    for name in ("ld-linux-x86-64.so.2", "libc.so.6"):
        dest = tree.host(f"/usr{HOST_MULTI}/{name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f"{HOST_MULTI}/{name}", dest)


def host_musl(tree: Tree) -> None:
    """The host's musl (Debian's musl package) in Alpine's layout."""
    dest = tree.host(MUSL_LOADER)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy("/lib/x86_64-linux-musl/libc.so", dest)
    tree.link("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")


def oracle(root: Path, program: str, env: dict[str, str] | None = None,
           loader: str = LOADER) -> tuple[set[tuple[int, int]], bool]:
    """(inodes the root's loader maps for PROGRAM, whether it reported a failure)."""
    proc = subprocess.run([CHROOT, str(root), loader, "--list", program],
                          capture_output=True, text=True, env=env or {})
    walker = Walker(str(root))
    mapped = {identity(walker, program)}
    failed = proc.returncode != 0
    for line in proc.stdout.splitlines():
        if "not found" in line:
            failed = True
            continue
        found = re.match(r"\s+\S+ => (\S+) \(0x", line) or re.match(r"\s+(/\S+) \(0x", line)
        if found:
            mapped.add(identity(walker, found.group(1)))
    return mapped, failed


def identity(walker: Walker, path: str) -> tuple[int, int]:
    st = os.stat(walker.host(walker.resolve(path).path))
    return st.st_dev, st.st_ino
