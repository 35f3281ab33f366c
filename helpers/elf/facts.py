"""What a root's own dynamic loader would do, learnt from the loader file itself.

glibc compiles its trusted ("system") directories, its cache path and the value of `$LIB`
into ld.so; they sit in .rodata as NUL-terminated strings (the directories as one run of
absolute paths ending in `/`), next to a banner with the version.  Nothing is executed.
Per-architecture tables give what the strings do not: glibc-hwcaps names, legacy hwcap
subdirectories, `$PLATFORM` candidates and the cache ABI flags the loader accepts.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from acigen.helpers.elf.elffile import ElfInfo
from acigen.helpers.rootfs.walk import FILE, Walk, Walker

EM_386, EM_ARM, EM_X86_64, EM_AARCH64, EM_RISCV = 3, 40, 62, 183, 243
EM_PPC, EM_PPC64, EM_S390, EM_SPARCV9, EM_LOONGARCH = 20, 21, 22, 43, 258
EF_ARM_ABI_FLOAT_HARD = 0x400
EF_RISCV_FLOAT_ABI_DOUBLE = 0x4


@dataclass(frozen=True)
class Abi:
    """The ELF identity a loader accepts for the objects it maps."""

    elfclass: int
    little: bool
    e_machine: int
    e_flags: int = 0

    def mismatch(self, info: ElfInfo) -> str | None:
        """Why INFO is not loadable by this loader: 'class' or 'machine' (both skipped by
        glibc) or 'endian' (fatal); None when it fits."""
        if info.little != self.little:
            return "endian"
        if info.elfclass != self.elfclass:
            return "class"
        if info.e_machine != self.e_machine:
            return "machine"
        return None


@dataclass(frozen=True)
class Arch:
    triplet: str
    musl: str                       # the arch part of ld-musl-<arch>.so.1
    glibc_interp: str               # the usual PT_INTERP
    cache_flags: frozenset[int] | None
    hwcaps: tuple[str, ...] = ()    # glibc-hwcaps subdirectories, highest priority first
    platforms: tuple[str, ...] = ()  # $PLATFORM candidates
    legacy: tuple[str, ...] = ()    # legacy hwcap names (glibc <= 2.36), besides tls


_X86_LEGACY_PLATFORMS = ("haswell", "xeon_phi")


def arch_of(abi: Abi) -> Arch:
    """Per-architecture constants (glibc's dl-cache.h, dl-hwcaps-subdirs.c, dl-procinfo)."""
    m, bits = abi.e_machine, abi.elfclass
    if m == EM_X86_64:
        levels = ("x86-64-v4", "x86-64-v3", "x86-64-v2")
        plats = (*_X86_LEGACY_PLATFORMS, "x86_64")
        if bits == 32:
            return Arch("x86_64-linux-gnux32", "x32", "/libx32/ld-linux-x32.so.2",
                        frozenset({1, 0x803}), levels, plats, (*plats, "avx512_1"))
        return Arch("x86_64-linux-gnu", "x86_64", "/lib64/ld-linux-x86-64.so.2",
                    frozenset({1, 0x303}), levels, plats, (*plats, "avx512_1"))
    if m == EM_386:
        plats = ("i386", "i486", "i586", "i686", *_X86_LEGACY_PLATFORMS)
        return Arch("i386-linux-gnu", "i386", "/lib/ld-linux.so.2", frozenset({1, 3}),
                    (), plats, (*plats, "sse2", "x86_64", "avx512_1"))
    if m == EM_AARCH64:
        return Arch("aarch64-linux-gnu", "aarch64", "/lib/ld-linux-aarch64.so.1",
                    frozenset({1, 0xA03}), (), ("aarch64",), ("aarch64",))
    if m == EM_ARM:
        plats = ("v5l", "v6l", "v7l", "v8l")
        if abi.e_flags & EF_ARM_ABI_FLOAT_HARD:
            return Arch("arm-linux-gnueabihf", "armhf", "/lib/ld-linux-armhf.so.3",
                        frozenset({1, 0x903}), (), plats, plats)
        return Arch("arm-linux-gnueabi", "arm", "/lib/ld-linux.so.3",
                    frozenset({1, 3, 0xB03}), (), plats, plats)
    if m == EM_PPC64:
        if abi.little:
            return Arch("powerpc64le-linux-gnu", "powerpc64le", "/lib64/ld64.so.2",
                        frozenset({1, 0x503}), ("power10", "power9"), ("power8", "power9"))
        return Arch("powerpc64-linux-gnu", "powerpc64", "/lib64/ld64.so.1",
                    frozenset({1, 0x503}), (), ("power8",))
    if m == EM_S390 and bits == 64:
        return Arch("s390x-linux-gnu", "s390x", "/lib/ld64.so.1", frozenset({1, 0x403}),
                    ("z16", "z15", "z14", "z13"), ("z900",))
    if m == EM_RISCV and bits == 64:
        double = abi.e_flags & EF_RISCV_FLOAT_ABI_DOUBLE
        return Arch("riscv64-linux-gnu", "riscv64",
                    "/lib/ld-linux-riscv64-lp64d.so.1" if double else
                    "/lib/ld-linux-riscv64-lp64.so.1",
                    frozenset({1, 0x1003 if double else 0xF03}),
                    ("rva23u64", "rva22u64", "rva20u64"))
    if m == EM_LOONGARCH:
        return Arch("loongarch64-linux-gnu", "loongarch64", "/lib64/ld-linux-loongarch-lp64d.so.1",
                    frozenset({1, 0x1203}))
    if m == EM_SPARCV9:
        return Arch("sparc64-linux-gnu", "sparc64", "/lib64/ld-linux.so.2", frozenset({1, 0x103}))
    if m == EM_PPC:
        return Arch("powerpc-linux-gnu", "powerpc", "/lib/ld.so.1", frozenset({1, 3}))
    return Arch("", "", "", None)  # unknown: accept any cache entry, rely on ELF checks


@dataclass(frozen=True)
class LoaderFacts:
    family: str                     # "glibc" or "musl"
    interp: str | None              # the PT_INTERP string (or a default loader path)
    walk: Walk | None               # where it leads in the root (None: no loader file)
    soname: str | None
    abi: Abi
    arch: Arch
    version: tuple[int, int] | None  # glibc release
    system_dirs: tuple[str, ...]    # no trailing slash
    lib: str | None                 # the value of $LIB
    cache_path: str = "/etc/ld.so.cache"
    preload_path: str = "/etc/ld.so.preload"
    musl_path_file: str | None = None

    @property
    def legacy_hwcaps(self) -> bool:
        """Whether legacy hwcap subdirectories (tls/, haswell/, ...) are still searched."""
        return self.family == "glibc" and (self.version is None or self.version <= (2, 36))

    @property
    def glibc_hwcaps(self) -> tuple[str, ...]:
        if self.family != "glibc" or (self.version is not None and self.version < (2, 33)):
            return ()
        return self.arch.hwcaps


def family_of(interp: str | None, info: ElfInfo) -> str:
    if interp is not None:
        return "musl" if posixpath.basename(interp).startswith("ld-musl-") else "glibc"
    musl = any(n.startswith("libc.musl-") or n == "libc.so" for n in info.needed)
    return "musl" if musl else "glibc"


def _musl_loader(walker: Walker, walk: Walk | None, loader: ElfInfo | None) -> bool:
    """A musl loader under a name not starting with ld-musl-: reached through
    a link that has that name, or known by its own contents (Alpine's
    SONAME, or musl's banner in a loader defining no GLIBC_ versions)."""
    if walk is None or walk.status != FILE or loader is None:
        return False
    if posixpath.basename(walk.path).startswith("ld-musl-") or \
            (loader.soname or "").startswith("libc.musl-"):
        return True
    if any(v.startswith("GLIBC_") for v in loader.verdef):
        return False
    with walker.open(walk.path) as stream:
        return b"musl libc (" in stream.read()


def default_interp(walker: Walker, info: ElfInfo) -> str | None:
    """The root's loader for an object without PT_INTERP (a shared library): the usual
    interpreter path for its ABI, if the root has it."""
    arch = arch_of(Abi(info.elfclass, info.little, info.e_machine, info.e_flags))
    if family_of(None, info) == "musl":
        path = f"/lib/ld-musl-{arch.musl}.so.1" if arch.musl else ""
    else:
        path = arch.glibc_interp
    return path if path and walker.resolve(path).status == FILE else None


def learn(walker: Walker, interp: str | None, info: ElfInfo,
          loader: ElfInfo | None) -> LoaderFacts:
    """Facts about the loader INTERP (parsed as LOADER) for the object INFO."""
    fit = loader or info
    abi = Abi(fit.elfclass, fit.little, fit.e_machine, fit.e_flags)
    arch = arch_of(abi)
    walk = walker.resolve(interp) if interp else None
    family = family_of(interp, info)
    if family == "glibc" and interp and _musl_loader(walker, walk, loader):
        family = "musl"
    soname = loader.soname if loader else None
    if family == "musl":
        return LoaderFacts("musl", interp, walk, soname, abi, arch, None, (), None,
                           musl_path_file=_musl_path_file(interp, arch))
    scan = _Scan((), None, None, None, None)
    if walk is not None and walk.status == FILE and loader is not None:
        scan = _scan(walker, walk, loader)
    dirs = scan.dirs or _default_dirs(walk, arch)
    return LoaderFacts("glibc", interp, walk, soname, abi, arch, scan.version, dirs,
                       scan.lib or _lib(b"", dirs), scan.cache or "/etc/ld.so.cache",
                       scan.preload or "/etc/ld.so.preload")


@dataclass(frozen=True)
class _Scan:
    dirs: tuple[str, ...]
    version: tuple[int, int] | None
    lib: str | None
    cache: str | None
    preload: str | None


_SCANS: dict[tuple[int, int, int, int], _Scan] = {}


def _scan(walker: Walker, walk: Walk, loader: ElfInfo) -> _Scan:
    """What the loader file's strings say, once per file (keyed by inode and change)."""
    st = walker.lstat(walk.path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) if st else (0, 0, 0, 0)
    found = _SCANS.get(key)
    if found is None:
        with walker.open(walk.path) as stream:
            data = stream.read()
        dirs = _system_dirs(data)
        found = _Scan(dirs, _version(data, loader), _lib(data, dirs) if dirs else None,
                      _string(data, rb"ld\.so\.cache"), _string(data, rb"ld\.so\.preload"))
        if st is not None:
            _SCANS[key] = found
    return found


def _system_dirs(data: bytes) -> tuple[str, ...]:
    # the first run of two or more NUL-separated absolute paths ending in '/' that all
    # mention lib: glibc's SYSTEM_DIRS string
    for match in re.finditer(rb"(?<=\0)(?:/[\x21-\x7e]*/\0){2,}", data):
        dirs = [d.decode() for d in match.group().split(b"\0") if d]
        if all("lib" in d for d in dirs):
            return tuple(d.rstrip("/") or "/" for d in dirs)
    return ()


def _default_dirs(walk: Walk | None, arch: Arch) -> tuple[str, ...]:
    where = walk.path if walk is not None else ""
    if arch.triplet and f"/{arch.triplet}/" in where:
        return (f"/lib/{arch.triplet}", f"/usr/lib/{arch.triplet}", "/lib", "/usr/lib")
    if "/lib64/" in where or arch.glibc_interp.startswith("/lib64/"):
        return ("/lib64", "/usr/lib64")
    return ("/lib", "/usr/lib")


def _lib(data: bytes, dirs: tuple[str, ...]) -> str:
    # $LIB is the library directory glibc was configured with, stored relative
    # ("lib/x86_64-linux-gnu", "lib64"); prefer the string the loader really holds
    for directory in dirs:
        candidate = directory.strip("/")
        if b"\0" + candidate.encode() + b"\0" in data:
            return candidate
    return dirs[0].strip("/") if dirs else "lib"


def _version(data: bytes, loader: ElfInfo | None) -> tuple[int, int] | None:
    found = re.search(rb"release version (\d+)\.(\d+)", data)
    if found:
        return int(found.group(1)), int(found.group(2))
    versions = [tuple(map(int, v[6:].split(".")[:2])) for v in (loader.verdef if loader else ())
                if re.fullmatch(r"GLIBC_\d+\.\d+(\.\d+)?", v)]
    return max(versions) if versions else None  # type: ignore[return-value]


def _string(data: bytes, tail: bytes) -> str | None:
    found = re.search(rb"(?<=\0)(/[\x21-\x7e]*" + tail + rb")\0", data)
    return found.group(1).decode() if found else None


def _musl_path_file(interp: str | None, arch: Arch) -> str:
    # musl: <loader path minus its last two components>/etc/ld-musl-<arch>.path,
    # the arch being the one compiled in (it is also in the loader's own name)
    name = posixpath.basename(interp or "")
    found = re.fullmatch(r"ld-musl-(.+)\.so\.1", name)
    musl_arch = found.group(1) if found else arch.musl
    text = interp or ""
    slashes = [i for i, ch in enumerate(text) if ch == "/"]
    prefix = text[: slashes[-2]] if text.startswith("/") and len(slashes) > 1 else ""
    return f"{prefix}/etc/ld-musl-{musl_arch}.path"
