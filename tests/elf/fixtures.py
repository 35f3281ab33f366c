"""Fixture roots for resolver tests: files, links, fake loaders and caches in a temp dir.

A fake glibc loader is an ELF file whose read-only bytes hold what the real one compiles
in (system directories, $LIB, cache path, version banner); the resolver reads those
strings exactly as it reads a real ld.so.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

from tests.elf.elfwriter import EM_386, Elf, write

X86_64_INTERP = "/lib64/ld-linux-x86-64.so.2"
DEBIAN_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
FEDORA_DIRS = ("/lib64", "/usr/lib64")
GLIBC_VERSIONS = [f"GLIBC_2.{n}" for n in (2, 3, 4, 14, 17, 28, 31)]


def loader_rodata(dirs: tuple[str, ...], lib: str, version: str = "2.36") -> bytes:
    run = b"".join(d.encode() + b"/\0" for d in dirs)
    return (run + lib.encode() + b"\0/etc/ld.so.cache\0/etc/ld.so.preload\0"
            + f"ld.so (GNU libc) stable release version {version}.\0".encode())


class Tree:
    """A root directory being built; paths are in-root, absolute."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def elf(self, path: str, elf: Elf | None = None, **fields: object) -> str:
        write(self.host(path), elf, **fields)
        return path

    def exe(self, path: str, **fields: object) -> str:
        fields.setdefault("interp", X86_64_INTERP)
        return self.elf(path, **fields)

    def lib(self, path: str, **fields: object) -> str:
        fields.setdefault("soname", path.rsplit("/", 1)[1])
        return self.elf(path, **fields)

    def link(self, path: str, target: str) -> str:
        host = self.host(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, host)
        return path

    def text(self, path: str, content: str | bytes, mode: int = 0o644) -> str:
        host = self.host(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(host, mode)
        return path

    def mkdir(self, path: str) -> str:
        self.host(path).mkdir(parents=True, exist_ok=True)
        return path

    # -- whole layouts -----------------------------------------------------------------

    def debian(self, version: str = "2.36", libc_versions: list[str] | None = None) -> None:
        """usr-merged multiarch glibc: /lib -> usr/lib, /lib64 -> usr/lib64 and an
        absolute /usr/lib64/ld-linux-x86-64.so.2 link, as Debian 12 ships them."""
        self.link("/lib", "usr/lib")
        self.link("/lib64", "usr/lib64")
        self.link("/usr/lib64/ld-linux-x86-64.so.2",
                  "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        multi = "/usr/lib/x86_64-linux-gnu"
        self.lib(f"{multi}/ld-linux-x86-64.so.2", osabi=3,
                 rodata=loader_rodata(DEBIAN_DIRS, "lib/x86_64-linux-gnu", version))
        self.lib(f"{multi}/libc.so.6", interp=X86_64_INTERP, needed=["ld-linux-x86-64.so.2"],
                 verdef=libc_versions or GLIBC_VERSIONS, exports=["iconv_open"],
                 rodata=b"/usr/lib/x86_64-linux-gnu/gconv\0/etc/nsswitch.conf\0")

    def fedora(self) -> None:
        """Fedora/RHEL-style: everything 64-bit in /lib64 and /usr/lib64."""
        self.lib("/lib64/ld-linux-x86-64.so.2", osabi=3,
                 rodata=loader_rodata(FEDORA_DIRS, "lib64"))
        self.lib("/lib64/libc.so.6", interp=X86_64_INTERP, needed=["ld-linux-x86-64.so.2"],
                 verdef=GLIBC_VERSIONS)

    def i386(self) -> None:
        """An i386 multiarch loader and libc next to the amd64 ones (Debian layout)."""
        dirs = ("/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu", "/lib", "/usr/lib")
        self.link("/usr/lib/ld-linux.so.2", "i386-linux-gnu/ld-linux.so.2")
        self.lib("/usr/lib/i386-linux-gnu/ld-linux.so.2", elfclass=32, machine=EM_386,
                 osabi=3, rodata=loader_rodata(dirs, "lib/i386-linux-gnu"))
        self.lib("/usr/lib/i386-linux-gnu/libc.so.6", elfclass=32, machine=EM_386,
                 interp="/lib/ld-linux.so.2", needed=["ld-linux.so.2"])

    def musl(self, path_file: str | None = None) -> None:
        """Alpine-style musl: the loader is libc; libc.musl-x86_64.so.1 links to it."""
        self.lib("/lib/ld-musl-x86_64.so.1", soname="libc.musl-x86_64.so.1")
        self.link("/lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")
        if path_file is not None:
            self.text("/etc/ld-musl-x86_64.path", path_file)

    def ldconfig(self) -> None:
        """Build /etc/ld.so.cache with the host's real ldconfig, chrooted into the tree."""
        self.host("/etc").mkdir(parents=True, exist_ok=True)
        if not self.host("/etc/ld.so.conf").exists():
            self.text("/etc/ld.so.conf", "")
        subprocess.run(["/usr/sbin/ldconfig", "-r", str(self.root), "-X"], check=True,
                       capture_output=True)


def cache_bytes(entries: list[tuple[str, str, int, int]], old_prefix: bool = False) -> bytes:
    """An ld.so.cache in glibc's new format: (key, value, flags, hwcap) entries, optionally
    behind an old-format (ld.so-1.7.0) block as old ldconfigs wrote."""
    strings = bytearray()
    offsets = []
    header_size = 48 + 24 * len(entries)
    for key, value, _, _ in entries:
        offsets.append((header_size + len(strings), header_size + len(strings) + len(key) + 1))
        strings += key.encode() + b"\0" + value.encode() + b"\0"
    new = b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", len(entries), len(strings), 2, 0)
    for (key_at, value_at), (_, _, flags, hwcap) in zip(offsets, entries, strict=True):
        new += struct.pack("<iIIIQ", flags, key_at, value_at, 0, hwcap)
    new += bytes(strings)
    if not old_prefix:
        return new
    old = b"ld.so-1.7.0\0" + struct.pack("<I", len(entries))
    old += b"".join(struct.pack("<iII", 1, 0, 0) for _ in entries)
    return old + bytes(-len(old) % 8) + new
