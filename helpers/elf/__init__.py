"""ELF run-time dependency closure inside a root filesystem, without running anything.

closure() simulates the root's own dynamic loader (glibc or musl) for each program with
pyelftools: PT_INTERP, breadth-first loading with SONAME reuse, RPATH/RUNPATH rules,
$ORIGIN/$LIB/$PLATFORM, the root's ld.so.cache, glibc-hwcaps variants, and the pieces glibc
loads by itself (NSS, libgcc_s, gconv).  See research/elf-deps.md for the behaviour copied.

Modules: elffile (parse one file), ldcache, ldconf, facts (what the loader compiled in),
search (path strings), loader (one process), rules, scripts, versions, closure.
"""

from __future__ import annotations

from acigen.helpers.elf.closure import DEFAULT_RULES, check_versions, closure
from acigen.helpers.elf.context import CACHE_MODES, RULES
from acigen.helpers.elf.elffile import ElfError, ElfInfo
from acigen.helpers.elf.model import DATA_HOWS, Closure, Need

__all__ = ["CACHE_MODES", "DATA_HOWS", "DEFAULT_RULES", "RULES", "Closure", "ElfError",
           "ElfInfo", "Need", "check_versions", "closure"]
