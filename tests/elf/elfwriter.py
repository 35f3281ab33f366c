"""A tiny ELF writer for resolver fixtures: headers, PT_INTERP, PT_DYNAMIC and tables.

Only what a dynamic loader reads is emitted: the ELF header, program headers (one PT_LOAD
mapping the whole file at address = offset, PT_INTERP, PT_DYNAMIC), the dynamic string and
symbol tables with a DT_HASH, version need/definition tables, and optional read-only bytes
(a fake ld.so carries its system directories there).  No section headers, like a stripped
file.  Any class, byte order and machine, so 32-bit, aarch64 and big-endian fixtures are as
easy as native ones.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

ET_EXEC, ET_DYN = 2, 3
EM_386, EM_X86_64, EM_AARCH64 = 3, 62, 183
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DF_1_NODEFLIB, DF_1_PIE = 0x800, 0x08000000
DT = dict(NULL=0, NEEDED=1, HASH=4, STRTAB=5, SYMTAB=6, STRSZ=10, SYMENT=11, SONAME=14,
          RPATH=15, RUNPATH=29, FLAGS_1=0x6FFFFFFB, VERDEF=0x6FFFFFFC, VERDEFNUM=0x6FFFFFFD,
          VERNEED=0x6FFFFFFE, VERNEEDNUM=0x6FFFFFFF, AUXILIARY=0x7FFFFFFD, FILTER=0x7FFFFFFF)


def elf_hash(name: str) -> int:
    h = 0
    for ch in name.encode():
        h = (h << 4) + ch
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g
    return h & 0xFFFFFFFF


@dataclass
class Elf:
    interp: str | None = None
    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags_1: int = 0
    filters: list[str] = field(default_factory=list)
    auxiliary: list[str] = field(default_factory=list)
    dynamic: bool = True
    e_type: int = ET_DYN
    elfclass: int = 64
    little: bool = True
    machine: int = EM_X86_64
    osabi: int = 0
    verneed: dict[str, list[str]] = field(default_factory=dict)
    verdef: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    rodata: bytes = b""


class _Strings:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.index: dict[str, int] = {}

    def add(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.data)
            self.data += text.encode() + b"\0"
        return self.index[text]


class _Builder:
    def __init__(self, elf: Elf) -> None:
        self.elf = elf
        self.e = "<" if elf.little else ">"
        self.wide = elf.elfclass == 64
        self.body = bytearray()
        self.strings = _Strings()

    def build(self) -> bytes:
        elf = self.elf
        phnum = 1 + (elf.interp is not None) + elf.dynamic
        ehsize, phentsize = (64, 56) if self.wide else (52, 32)
        start = ehsize + phnum * phentsize
        interp_at = self._place(start, (elf.interp or "").encode() + b"\0"
                                if elf.interp is not None else b"")
        dyn_at, dyn_size = self._dynamic(start) if elf.dynamic else (0, 0)
        if elf.rodata:  # after everything the loader reads, like .rodata
            self._place(start, b"\0" + elf.rodata + b"\0")
        total = start + len(self.body)
        phdrs = [self._phdr(PT_LOAD, 0, total, 5)]
        if elf.interp is not None:
            phdrs.append(self._phdr(PT_INTERP, interp_at, len(elf.interp) + 1, 4))
        if elf.dynamic:
            phdrs.append(self._phdr(PT_DYNAMIC, dyn_at, dyn_size, 6))
        return self._ehdr(phnum, ehsize, phentsize) + b"".join(phdrs) + bytes(self.body)

    def _place(self, start: int, data: bytes, align: int = 8) -> int:
        while len(self.body) % align:
            self.body.append(0)
        at = start + len(self.body)
        self.body += data
        return at

    def _ehdr(self, phnum: int, ehsize: int, phentsize: int) -> bytes:
        elf = self.elf
        ident = (b"\x7fELF" + bytes([2 if self.wide else 1, 1 if elf.little else 2, 1,
                                     elf.osabi, 0]) + bytes(7))
        if self.wide:
            rest = struct.pack(self.e + "HHIQQQIHHHHHH", elf.e_type, elf.machine, 1, 0,
                               ehsize, 0, 0, ehsize, phentsize, phnum, 64, 0, 0)
        else:
            rest = struct.pack(self.e + "HHIIIIIHHHHHH", elf.e_type, elf.machine, 1, 0,
                               ehsize, 0, 0, ehsize, phentsize, phnum, 40, 0, 0)
        return ident + rest

    def _phdr(self, kind: int, offset: int, size: int, flags: int) -> bytes:
        if self.wide:
            return struct.pack(self.e + "IIQQQQQQ", kind, flags, offset, offset, offset,
                               size, size, 8)
        return struct.pack(self.e + "IIIIIIII", kind, offset, offset, offset, size, size,
                           flags, 4)

    def _dynamic(self, start: int) -> tuple[int, int]:
        elf, s = self.elf, self.strings
        tags: list[tuple[int, int]] = []
        for name in elf.needed:
            tags.append((DT["NEEDED"], s.add(name)))
        for name in elf.filters:
            tags.append((DT["FILTER"], s.add(name)))
        for name in elf.auxiliary:
            tags.append((DT["AUXILIARY"], s.add(name)))
        for key in ("soname", "rpath", "runpath"):
            value = getattr(elf, key)
            if value is not None:
                tags.append((DT[key.upper()], s.add(value)))
        if elf.flags_1:
            tags.append((DT["FLAGS_1"], elf.flags_1))
        symbols = self._symbols()
        verneed = self._verneed()
        verdef = self._verdef()
        strtab = self._place(start, bytes(s.data))
        tags += [(DT["STRTAB"], strtab), (DT["STRSZ"], len(s.data))]
        symtab = self._place(start, symbols)
        nsyms = len(symbols) // (24 if self.wide else 16)
        hashtab = self._place(start, struct.pack(self.e + "II", 1, nsyms) +
                              struct.pack(self.e + "I", 0) * (1 + nsyms))
        tags += [(DT["SYMTAB"], symtab), (DT["SYMENT"], 24 if self.wide else 16),
                 (DT["HASH"], hashtab)]
        if verneed:
            tags += [(DT["VERNEED"], self._place(start, verneed)),
                     (DT["VERNEEDNUM"], len(elf.verneed))]
        if verdef:
            tags += [(DT["VERDEF"], self._place(start, verdef)),
                     (DT["VERDEFNUM"], len(elf.verdef) + 1)]
        tags.append((DT["NULL"], 0))
        fmt = self.e + ("qQ" if self.wide else "lL")
        blob = b"".join(struct.pack(fmt, tag, value) for tag, value in tags)
        return self._place(start, blob), len(blob)

    def _symbols(self) -> bytes:
        rows = [(0, 0)] + [(self.strings.add(n), 0) for n in self.elf.imports]
        rows += [(self.strings.add(n), 0xFFF1) for n in self.elf.exports]  # SHN_ABS
        out = b""
        for name, shndx in rows:
            info = 0x12 if name else 0  # global function
            if self.wide:
                out += struct.pack(self.e + "IBBHQQ", name, info, 0, shndx, 0, 0)
            else:
                out += struct.pack(self.e + "IIIBBH", name, 0, 0, info, 0, shndx)
        return out

    def _verneed(self) -> bytes:
        out, files = b"", list(self.elf.verneed.items())
        for number, (file, versions) in enumerate(files):
            size = 16 + 16 * len(versions)
            nxt = size if number < len(files) - 1 else 0
            out += struct.pack(self.e + "HHIII", 1, len(versions), self.strings.add(file),
                               16, nxt)
            for index, version in enumerate(versions):
                last = index == len(versions) - 1
                out += struct.pack(self.e + "IHHII", elf_hash(version), 0, 2 + index,
                                   self.strings.add(version), 0 if last else 16)
        return out

    def _verdef(self) -> bytes:
        if not self.elf.verdef:
            return b""
        names = [self.elf.soname or "base", *self.elf.verdef]
        out = b""
        for index, name in enumerate(names):
            nxt = 28 if index < len(names) - 1 else 0
            out += struct.pack(self.e + "HHHHIII", 1, 1 if index == 0 else 0, index + 1, 1,
                               elf_hash(name), 20, nxt)
            out += struct.pack(self.e + "II", self.strings.add(name), 0)
        return out


def build(elf: Elf) -> bytes:
    return _Builder(elf).build()


def write(path: str | Path, elf: Elf | None = None, **fields: object) -> Path:
    """Write an ELF file (an Elf, or Elf(**fields)) at PATH, parents created, mode 0755."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build(elf or Elf(**fields)))  # type: ignore[arg-type]
    os.chmod(path, 0o755)
    return path
