"""Read what the dynamic loader reads from one ELF file, once per file.

pyelftools parses the ELF header and program headers; the PT_DYNAMIC segment (what the
loader uses, and what survives stripped section headers) and the version tables are
decoded here with struct, which is much faster and never fails on odd string bytes.
Results are cached by (device, inode, size, mtime) so a file reached under many names,
or needed by many programs, is parsed once.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError as _PyElfError
from elftools.common.utils import struct_parse
from elftools.elf.structs import ELFStructs

from acigen.helpers.core.common import open_regular

ET_EXEC, ET_DYN = 2, 3
DF_1_NODEFLIB, DF_1_PIE = 0x800, 0x08000000
VER_FLG_BASE, VER_FLG_WEAK = 0x1, 0x2

DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 1, 4, 5, 6, 10
DT_SONAME, DT_RPATH, DT_RUNPATH = 14, 15, 29
DT_GNU_HASH, DT_FLAGS_1 = 0x6FFFFEF5, 0x6FFFFFFB
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = (
    0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF)
DT_AUXILIARY, DT_FILTER = 0x7FFFFFFD, 0x7FFFFFFF

# imported symbols that make a run-time rule apply (see rules.py)
TRIGGERS = ("iconv_open",)


class ElfError(Exception):
    """A file the loader would reject outright (not ELF, truncated, unreadable)."""


@dataclass(frozen=True)
class ElfInfo:
    elfclass: int              # 32 or 64
    little: bool
    machine: str               # pyelftools' name, e.g. EM_X86_64
    e_machine: int
    osabi: int
    abiversion: int
    e_type: int
    e_flags: int
    interp: str | None         # PT_INTERP
    dynamic: bool              # has PT_DYNAMIC
    deps: tuple[tuple[str, str], ...] = ()  # (needed|filter|auxiliary, name) in table order
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags_1: int = 0
    verneed: tuple[tuple[str, tuple[tuple[str, bool], ...]], ...] = ()  # (file, ((ver, weak)))
    verdef: tuple[str, ...] = ()
    imports: frozenset[str] = field(default_factory=frozenset)  # TRIGGERS imported
    static_nss: bool = False   # static binary embedding glibc's NSS loader

    @property
    def pie(self) -> bool:
        return bool(self.flags_1 & DF_1_PIE)

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def needed(self) -> tuple[str, ...]:
        return tuple(name for kind, name in self.deps if kind == "needed")


_cache: dict[tuple[int, int, int, int], ElfInfo | ElfError] = {}


def load(host_path: str, st: os.stat_result) -> ElfInfo:
    """Parse HOST_PATH (whose lstat/stat is ST); raise ElfError if the loader would reject it."""
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _cache.get(key)
    if hit is None:
        try:
            hit = _parse(host_path)
        except ElfError as exc:
            hit = exc
        _cache[key] = hit
    if isinstance(hit, ElfError):
        raise hit
    return hit


def forget() -> None:
    _cache.clear()


def _parse(host_path: str) -> ElfInfo:
    try:
        with os.fdopen(open_regular(host_path), "rb") as stream:
            magic = stream.read(4)
            if len(magic) < 4:
                raise ElfError("file too short")
            if magic != b"\x7fELF":
                raise ElfError("invalid ELF header")
            stream.seek(0)
            return _Reader(stream).info()
    except IsADirectoryError as exc:
        raise ElfError("cannot read file data: Is a directory") from exc
    except OSError as exc:
        raise ElfError(f"cannot read file data: {exc.strerror}") from exc
    except (_PyElfError, struct.error, ValueError, KeyError) as exc:
        raise ElfError(f"malformed ELF file ({exc})") from exc


_STRUCTS: dict[tuple[object, ...], ELFStructs] = {}


def _structs(little: bool, elfclass: int, header: object = None) -> ELFStructs:
    """pyelftools' struct definitions, built once per ABI (building them is most of the
    cost of ELFFile() itself)."""
    key: tuple[object, ...] = (little, elfclass)
    if header is not None:
        key += (header["e_type"], header["e_machine"],  # type: ignore[index]
                header["e_ident"]["EI_OSABI"])  # type: ignore[index]
    found = _STRUCTS.get(key)
    if found is None:
        found = ELFStructs(little_endian=little, elfclass=elfclass)
        found.create_basic_structs()
        if header is not None:
            found.create_advanced_structs(*key[2:])
        _STRUCTS[key] = found
    return found


class _Reader:
    """One parse of one open file."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream
        self.size = os.fstat(stream.fileno()).st_size  # every read is checked against it
        ident = stream.read(20)
        if len(ident) < 20:
            raise ElfError("file too short")
        if ident[4] not in (1, 2):
            raise ElfError("invalid ELF class")
        if ident[5] not in (1, 2):
            raise ElfError("invalid ELF data encoding")
        self.elfclass = 32 if ident[4] == 1 else 64
        self.little = ident[5] == 1
        self.end = "<" if self.little else ">"
        self.raw = ident
        header = struct_parse(_structs(self.little, self.elfclass).Elf_Ehdr, stream, 0)
        self.header = header
        self.structs = _structs(self.little, self.elfclass, header)
        self.loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        self.interp: str | None = None
        self.dynamic: tuple[int, int] | None = None  # (offset, size)

    def info(self) -> ElfInfo:
        header, raw = self.header, self.raw
        self._read_phdrs()
        e_type, e_machine = struct.unpack(self.end + "HH", raw[16:20])
        base = dict(
            elfclass=self.elfclass, little=self.little, machine=str(header["e_machine"]),
            e_machine=e_machine, osabi=raw[7], abiversion=raw[8], e_type=e_type,
            e_flags=int(header["e_flags"]), interp=self.interp,
            dynamic=self.dynamic is not None)
        if self.dynamic is None:
            return ElfInfo(**base, static_nss=self._static_nss())
        return ElfInfo(**base, **self._dynamic_fields())

    def _read(self, offset: int, size: int) -> bytes:
        # sizes and offsets come from the file: check them before asking for memory
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ElfError("file too short")
        self.stream.seek(offset)
        data = self.stream.read(size)
        if len(data) != size:
            raise ElfError("file too short")
        return data

    def _read_phdrs(self) -> None:
        header = self.header
        phdr = self.structs.Elf_Phdr
        if header["e_phoff"] + header["e_phnum"] * header["e_phentsize"] > self.size:
            raise ElfError("file too short")
        for index in range(header["e_phnum"]):
            seg = struct_parse(phdr, self.stream,
                               header["e_phoff"] + index * header["e_phentsize"])
            kind = seg["p_type"]
            if kind == "PT_LOAD":
                self.loads.append((seg["p_vaddr"], seg["p_offset"], seg["p_filesz"]))
            elif kind == "PT_INTERP":
                data = self._read(seg["p_offset"], seg["p_filesz"])
                self.interp = os.fsdecode(data.split(b"\0", 1)[0])
            elif kind == "PT_DYNAMIC":
                self.dynamic = (seg["p_offset"], seg["p_filesz"])

    def _offset(self, vaddr: int) -> int:
        for start, offset, size in self.loads:
            if start <= vaddr < start + size:
                return vaddr - start + offset
        raise ElfError(f"address {vaddr:#x} is outside every PT_LOAD")

    def _tags(self) -> list[tuple[int, int]]:
        offset, size = self.dynamic  # type: ignore[misc]
        fmt = self.end + ("qQ" if self.elfclass == 64 else "lL")
        step = struct.calcsize(fmt)
        data = self._read(offset, size - size % step)
        tags = []
        for tag, value in struct.iter_unpack(fmt, data):
            if tag == 0:
                break
            tags.append((tag, value))
        return tags

    def _dynamic_fields(self) -> dict[str, object]:
        tags = self._tags()
        first = {}
        for tag, value in tags:
            first.setdefault(tag, value)
        strtab = self._strtab(first)

        def text(value: int) -> str:
            return os.fsdecode(strtab[value:strtab.index(b"\0", value)])

        kinds = {DT_NEEDED: "needed", DT_FILTER: "filter", DT_AUXILIARY: "auxiliary"}
        deps = tuple((kinds[t], text(v)) for t, v in tags if t in kinds)
        fields: dict[str, object] = dict(
            deps=deps, flags_1=first.get(DT_FLAGS_1, 0),
            soname=text(first[DT_SONAME]) if DT_SONAME in first else None,
            rpath=text(first[DT_RPATH]) if DT_RPATH in first else None,
            runpath=text(first[DT_RUNPATH]) if DT_RUNPATH in first else None,
            verneed=self._verneed(first, text), verdef=self._verdef(first, text),
            imports=self._imports(first, strtab))
        return fields

    def _strtab(self, first: dict[int, int]) -> bytes:
        if DT_STRTAB not in first:
            return b"\0"
        return self._read(self._offset(first[DT_STRTAB]), first.get(DT_STRSZ, 0)) + b"\0"

    def _verneed(self, first: dict[int, int], text) -> tuple:  # type: ignore[no-untyped-def]
        if DT_VERNEED not in first:
            return ()
        out, offset = [], self._offset(first[DT_VERNEED])
        budget = self.size // 16  # entries the file can hold: links that loop run out
        for _ in range(first.get(DT_VERNEEDNUM, 0)):
            _, count, file, aux, nxt = struct.unpack(self.end + "HHIII", self._read(offset, 16))
            versions, where = [], offset + aux
            budget -= 1 + count
            if budget < 0:
                raise ElfError("version tables larger than the file")
            for _ in range(count):
                _, flags, _, name, anext = struct.unpack(self.end + "IHHII",
                                                         self._read(where, 16))
                versions.append((text(name), bool(flags & VER_FLG_WEAK)))
                where += anext
            out.append((text(file), tuple(versions)))
            if not nxt:
                break
            offset += nxt
        return tuple(out)

    def _verdef(self, first: dict[int, int], text) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
        if DT_VERDEF not in first:
            return ()
        out, offset = [], self._offset(first[DT_VERDEF])
        for _ in range(min(first.get(DT_VERDEFNUM, 0), self.size // 20)):
            _, flags, _, count, _, aux, nxt = struct.unpack(self.end + "HHHHIII",
                                                           self._read(offset, 20))
            if count and not flags & VER_FLG_BASE:  # the base entry is the file's own name
                name, _ = struct.unpack(self.end + "II", self._read(offset + aux, 8))
                out.append(text(name))
            if not nxt:
                break
            offset += nxt
        return tuple(out)

    def _imports(self, first: dict[int, int], strtab: bytes) -> frozenset[str]:
        # cheap filter first: only files whose string table names a trigger get their
        # symbol table walked
        wanted = {n.encode() + b"\0": n for n in TRIGGERS if b"\0" + n.encode() + b"\0" in strtab}
        if not wanted or DT_SYMTAB not in first:
            return frozenset()
        fmt = self.end + ("IBBHQQ" if self.elfclass == 64 else "IIIBBH")
        count = self._symbol_count(first)
        data = self._read(self._offset(first[DT_SYMTAB]), count * struct.calcsize(fmt))
        shndx = 3 if self.elfclass == 64 else 5
        found = set()
        for sym in struct.iter_unpack(fmt, data):
            if sym[shndx] == 0:  # SHN_UNDEF: an import
                for tail, name in wanted.items():
                    if strtab.startswith(tail, sym[0]):
                        found.add(name)
        return frozenset(found)

    def _symbol_count(self, first: dict[int, int]) -> int:
        if DT_HASH in first:  # nchain equals the number of symbols
            return struct.unpack(self.end + "I", self._read(self._offset(first[DT_HASH]) + 4, 4))[0]
        if DT_GNU_HASH not in first:
            return 0
        # GNU hash: the highest symbol index reachable from a bucket, then to its chain's end
        offset = self._offset(first[DT_GNU_HASH])
        nbuckets, symoffset, bloom, _ = struct.unpack(self.end + "IIII", self._read(offset, 16))
        word = 8 if self.elfclass == 64 else 4
        start = offset + 16 + bloom * word
        buckets = struct.unpack(f"{self.end}{nbuckets}I", self._read(start, 4 * nbuckets))
        last = max(buckets, default=0)
        if last < symoffset:
            return symoffset
        chain = start + 4 * nbuckets
        while not struct.unpack(self.end + "I",
                                self._read(chain + 4 * (last - symoffset), 4))[0] & 1:
            last += 1
        return last + 1

    def _static_nss(self) -> bool:
        self.stream.seek(0)
        return b"/etc/nsswitch.conf\0" in self.stream.read()
