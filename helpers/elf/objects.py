"""The loader simulation's records: a mapped object, a candidate file, a search outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from acigen.helpers.elf.elffile import ElfInfo
from acigen.helpers.rootfs.walk import Walk


@dataclass(eq=False)
class Obj:
    path: str              # the path string it was opened by ($ORIGIN of a library)
    walk: Walk
    info: ElfInfo
    origin: str
    loader: Obj | None     # the object whose request loaded it (RPATH chain)
    shown: str             # how edges and messages name it


@dataclass
class Hit:
    path: str
    walk: Walk
    info: ElfInfo
    how: str
    variant: bool          # a CPU-specific alternative: the search goes on


@dataclass
class Search:
    hits: list[Hit] = field(default_factory=list)
    fatal: str | None = None
    searched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
