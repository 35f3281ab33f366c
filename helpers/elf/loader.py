"""Simulate one process's dynamic loader: breadth-first mapping of needed names.

glibc (dl-deps.c, dl-load.c): objects are processed in load order; each DT_NEEDED /
DT_FILTER / DT_AUXILIARY name is first matched against every loaded object's names (the
names it was requested by, the path it was opened by, its SONAME), then searched with the
*requesting* object's RPATH chain (unless it has a RUNPATH), LD_LIBRARY_PATH, its own RUNPATH,
ld.so.cache and the system directories.  A file already mapped (same device and inode) is
reused.  musl (ldso/dynlink.c) differs: reserved libc names map to the loader, reuse is by
basename and inode, LD_LIBRARY_PATH comes first, the rpath chain is inherited whatever its
kind, and the first file that opens wins.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections import deque

from acigen.helpers.elf import musl
from acigen.helpers.elf.context import Context
from acigen.helpers.elf.elffile import ET_DYN, ET_EXEC, ElfError, ElfInfo
from acigen.helpers.elf.facts import LoaderFacts
from acigen.helpers.elf.model import Need
from acigen.helpers.elf.objects import Hit, Obj, Search
from acigen.helpers.elf.search import (
    Expanded,
    anchor,
    expand_glibc,
    has_origin,
    hwcaps_names,
    legacy_subdirs,
    split_path,
    tidy,
    trusted,
)
from acigen.helpers.rootfs.walk import DIR, FILE, LOOP, NOTDIR, OTHER, Walk

VDSO = frozenset({"linux-vdso.so.1", "linux-gate.so.1", "linux-vdso32.so.1",
                  "linux-vdso64.so.1"})
ABSENT = frozenset({"missing", "dangling", "notdir", "loop"})


class Process:
    """One program's loader state; run() maps everything it needs."""

    def __init__(self, ctx: Context, program: str, walk: Walk, info: ElfInfo,
                 facts: LoaderFacts, library: bool = False) -> None:
        self.ctx, self.walker, self.facts = ctx, ctx.walker, facts
        self.program = program
        self.musl = facts.family == "musl"
        self.secure = not library and self._setuid(walk)
        self.any_cpu = ctx.cpu == "any"
        self.hwcaps = hwcaps_names(facts, ctx.cpu)
        self.objects: list[Obj] = []
        self.by_name: dict[str, list[Obj]] = {}
        self.by_key: dict[tuple[int, int], Obj] = {}
        self.queue: deque[Obj] = deque()
        # $ORIGIN of the executable is the directory of its resolved path (/proc/self/exe);
        # a library is known by the path it was opened by
        origin = posixpath.dirname(tidy(program) if library else walk.path)
        self.exe = self._add(program, walk, info, origin, None, info.soname)
        self.loader_obj = self._seed_loader()
        self.queue.append(self.exe)

    # -- bookkeeping -------------------------------------------------------------------

    def _setuid(self, walk: Walk) -> bool:
        st = self.walker.lstat(walk.path)
        if st is not None and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            return True
        try:
            os.getxattr(self.walker.host(walk.path), "security.capability",
                        follow_symlinks=False)
        except OSError:
            return False
        return True

    def _add(self, path: str, walk: Walk, info: ElfInfo, origin: str, loader: Obj | None,
             name: str | None) -> Obj:
        obj = Obj(path, walk, info, origin, loader, self._show(path))
        self.objects.append(obj)
        st = self.walker.lstat(walk.path)
        if st is not None:
            self.by_key.setdefault((st.st_dev, st.st_ino), obj)
        if self.musl:
            self._name(obj, posixpath.basename(path))
        else:
            for alias in (name, path, info.soname):
                self._name(obj, alias)
        return obj

    def _name(self, obj: Obj, name: str | None) -> None:
        if name:
            owners = self.by_name.setdefault(name, [])
            if obj not in owners:
                owners.append(obj)

    def _seed_loader(self) -> Obj | None:
        """The loader is mapped first, answering to its PT_INTERP path and SONAME."""
        facts = self.facts
        if facts.interp is None or facts.walk is None or facts.walk.status != FILE:
            return None
        try:
            info = self.ctx.elf(facts.walk)
        except ElfError:
            return None
        return self._add(facts.interp, facts.walk, info, posixpath.dirname(facts.interp),
                         None, None)

    def _show(self, path: str) -> str:
        """A path for people: tidied; `..` resolved physically (never lexically)."""
        path = tidy(path)
        if "/../" not in path + "/":
            return path
        head, tail = posixpath.split(path)
        return posixpath.join(self.walker.resolve(head, self.ctx.workdir).path, tail)

    def _for(self, requester: Obj) -> str:
        return "" if requester is self.exe else f" (loading {self.program})"

    def edge(self, requester: Obj | str, name: str, provider: Obj | Walk | None,
             how: str) -> None:
        who = requester if isinstance(requester, str) else requester.shown
        if isinstance(provider, Walk):  # a data file, named by the path it is read by
            self.ctx.out.keep(provider)
            shown: str | None = name if provider.exists else None
        elif provider is not None:
            self.ctx.out.keep(provider.walk)
            shown = provider.shown
        else:
            shown = None
        self.ctx.out.need(Need(who, name, shown, how))

    # -- the breadth-first walk --------------------------------------------------------

    def run(self) -> None:
        while self.queue:
            obj = self.queue.popleft()
            for kind, name in obj.info.deps:
                self.request(obj, name, kind)

    def request(self, requester: Obj, name: str, kind: str = "needed",
                how: str | None = None, on_fail: str = "problem") -> list[Obj]:
        """Map NAME for REQUESTER; returns the objects that answer (several when
        CPU-specific alternatives exist).  on_fail: "problem", "warn" or "quiet"."""
        if name in VDSO:
            return []
        if self.musl:
            return musl.request(self, requester, name, kind, how, on_fail)
        if "$" in name:
            texts = expand_glibc(name, requester.origin, self.facts)
        else:
            texts = [Expanded(name, False)]
        if not texts:
            self._fail(requester, name, kind, Search(searched=["(a token in the name has "
                                                               "no value)"]), on_fail)
        found: list[Obj] = []
        for text in texts:
            known = self.by_name.get(text.text)
            if known:
                for obj in known:
                    self.edge(requester, name, obj, how or "loaded")
                found += known
                continue
            if "/" in text.text:
                search = self._direct(requester, text.text, text.variant)
            else:
                search = self._search_glibc(requester, text.text)
            found += self.settle(requester, name, text.text, kind, search, how, on_fail)
        return found

    def settle(self, requester: Obj, name: str, text: str, kind: str, search: Search,
                how: str | None, on_fail: str) -> list[Obj]:
        if search.fatal or not search.hits:
            self._fail(requester, name, kind, search, on_fail)
            return []
        found = []
        for hit in search.hits:
            obj = self._open(hit, requester, text)
            self.edge(requester, name, obj, how or hit.how)
            found.append(obj)
        if all(hit.variant for hit in search.hits):
            self.ctx.out.warn(f"{name} needed by {requester.shown}: only CPU-specific "
                              f"candidates found ({', '.join(h.path for h in search.hits)}); "
                              "a CPU that picks none of them cannot load it")
        return found

    def _open(self, hit: Hit, requester: Obj, name: str) -> Obj:
        self.ctx.out.keep(hit.walk)  # the loader reaches the file through this path
        st = self.walker.lstat(hit.walk.path)
        obj = self.by_key.get((st.st_dev, st.st_ino)) if st is not None else None
        if obj is None:
            obj = self._add(hit.path, hit.walk, hit.info, posixpath.dirname(hit.path),
                            requester, name)
            self.queue.append(obj)
        elif not self.musl:
            self._name(obj, name)
        return obj

    def _fail(self, requester: Obj, name: str, kind: str, search: Search,
              on_fail: str) -> None:
        if kind == "auxiliary" or on_fail == "quiet":  # optional: nothing to report
            return
        self.edge(requester, name, None, "fatal" if search.fatal else "not-found")
        if search.fatal:
            text = (f"{name} needed by {requester.shown}{self._for(requester)}: "
                    f"{search.fatal} (the loader stops at this file)")
        else:
            where = ", ".join(dict.fromkeys(search.searched)) or "nowhere"
            text = (f"{name} needed by {requester.shown}{self._for(requester)}: "
                    f"not found (searched: {where})")
            if search.skipped:
                text += f"; skipped: {', '.join(search.skipped)}"
            text += self._conf_hint(name)
        if on_fail == "warn":
            self.ctx.out.warn(text)
        elif self.ctx.allowed(name):
            self.ctx.out.warn(text + " [allowed]")
        else:
            self.ctx.out.problem(text)

    def _conf_hint(self, name: str) -> str:
        if self.musl or "/" in name or self.ctx.cache_mode != "cache":
            return ""
        for directory in self.ctx.conf_dirs(self.facts):
            if self.walker.resolve(f"{directory}/{name}").status == FILE:
                return (f"; {directory}/{name} exists in a directory listed in ld.so.conf, "
                        "but ld.so.cache does not list it (run ldconfig in the image)")
        return ""

    # -- candidates --------------------------------------------------------------------

    def probe(self, search: Search, path: str, how: str, variant: bool) -> bool:
        """Probe one candidate path; True when the search is over (a winner or a fatal)."""
        walk = self.walker.resolve(path)
        if walk.status == LOOP and self.musl:  # any error but ENOENT, ENOTDIR, EACCES,
            search.fatal = f"{path}: symbolic link loop (musl stops searching)"  # ENAMETOOLONG
            return True
        if walk.status in ABSENT:
            return False
        info = None
        if walk.status == DIR:
            fatal = "cannot read file data: Is a directory"
        elif walk.status == OTHER:
            fatal = "not a regular file"
        else:
            try:
                info = self.ctx.elf(walk)
                fatal = self._unloadable(search, path, info)
            except ElfError as exc:
                fatal = str(exc)
        if fatal == "skip":
            return False
        if fatal:
            search.fatal = f"{path}: {fatal}"
            return True
        search.hits.append(Hit(path, walk, info, how, variant))  # type: ignore[arg-type]
        return not variant

    def _unloadable(self, search: Search, path: str, info: ElfInfo) -> str:
        why = self.facts.abi.mismatch(info)
        if why == "endian":
            order = "little" if self.facts.abi.little else "big"
            return f"ELF file data encoding not {order}-endian"
        if why:
            if self.musl:
                return f"wrong ELF {why} (musl does not skip it)"
            search.skipped.append(f"{path} (wrong ELF {why})")
            return "skip"
        if info.osabi not in (0, 3):
            return "ELF file OS ABI invalid"
        if info.e_type == ET_EXEC and not self.musl:
            return "cannot dynamically load executable"
        if info.e_type not in (ET_DYN, ET_EXEC):
            return "only ET_DYN and ET_EXEC can be loaded"
        if info.pie and not self.musl:
            return "cannot dynamically load position-independent executable"
        return ""

    def _direct(self, requester: Obj, text: str, variant: bool) -> Search:
        path, relative = anchor(text, self.ctx.workdir)
        if relative:
            self.ctx.out.warn(f"{text} needed by {requester.shown} is relative: the loader "
                              f"opens it from the process's working directory; assumed "
                              f"{self.ctx.workdir}")
        search = Search(searched=[path])
        self.probe(search, path, "path", variant)
        return search

    # -- glibc's search ----------------------------------------------------------------

    def _search_glibc(self, requester: Obj, name: str) -> Search:
        search = Search()
        for how, dirs in self._path_steps(requester):
            if self.probe_dirs(search, dirs, name, how):
                return search
        if self.ctx.cache_mode != "conf" and self._probe_cache(search, requester, name):
            return search
        if self.ctx.cache_mode != "cache":
            dirs = [Expanded(d, False) for d in self.ctx.conf_dirs(self.facts)]
            if self.probe_dirs(search, dirs, name, "conf"):
                return search
        if requester.info.nodeflib:
            search.searched.append("(system directories skipped: NODEFLIB)")
            return search
        dirs = [Expanded(d, False) for d in self.facts.system_dirs]
        self.probe_dirs(search, dirs, name, "system")
        return search

    def _path_steps(self, requester: Obj):  # type: ignore[no-untyped-def]
        """(how, directories) for the RPATH chain, LD_LIBRARY_PATH and RUNPATH steps."""
        if requester.info.runpath is None:
            seen: set[int] = set()
            obj: Obj | None = requester
            while obj is not None:
                seen.add(id(obj))
                if obj.info.rpath is not None and obj.info.runpath is None:
                    yield "rpath", self._dirs(obj.info.rpath, obj)
                obj = obj.loader
            exe = self.exe
            if id(exe) not in seen and exe.info.rpath is not None and exe.info.runpath is None:
                yield "rpath", self._dirs(exe.info.rpath, exe)
        llp = self.ctx.env.get("LD_LIBRARY_PATH")
        if llp and not self.secure:
            yield "ld_library_path", self._dirs(llp, self.exe, ":;")
        if requester.info.runpath is not None:
            yield "runpath", self._dirs(requester.info.runpath, requester)

    def _dirs(self, text: str, obj: Obj, seps: str = ":") -> list[Expanded]:
        if text == "":  # an entirely empty RPATH is ignored
            return []
        out = []
        for element in split_path(text, seps):
            for exp in expand_glibc(element, obj.origin, self.facts):
                if self.secure and has_origin(element) and not (
                        element.startswith(("$ORIGIN", "${ORIGIN}")) and
                        trusted(exp.text, self.facts)):
                    continue  # secure mode: $ORIGIN only into trusted directories
                path, relative = anchor(exp.text, self.ctx.workdir)
                if relative:
                    self.ctx.out.warn(
                        f"{obj.shown}: search path element {element!r} is relative to the "
                        f"process's working directory; assumed {self.ctx.workdir}")
                out.append(Expanded(path, exp.variant, relative))
        return out

    def _variants(self, directory: str) -> list[tuple[str, bool]]:
        """CPU-specific subdirectories searched before DIRECTORY: (subdir, alternative)."""
        key = ("variants", directory, self.hwcaps, self.facts.legacy_hwcaps, self.any_cpu)
        found = self.ctx.memo.get(key)
        if found is None:
            found = []
            if self.hwcaps and self.walker.resolve(f"{directory}/glibc-hwcaps").status == DIR:
                found += [(f"glibc-hwcaps/{n}", self.any_cpu) for n in self.hwcaps]
            if self.any_cpu and self.facts.legacy_hwcaps:
                subs = legacy_subdirs(self.walker, directory, self.facts.arch.legacy)
                found += [(sub, True) for sub in subs]
            self.ctx.memo[key] = found
        return found  # type: ignore[return-value]

    def probe_dirs(self, search: Search, dirs: list[Expanded], name: str, how: str) -> bool:
        for directory in dirs:
            search.searched.append(directory.text)
            for sub, variant in self._variants(directory.text):
                if self.probe(search, f"{directory.text}/{sub}/{name}",
                             how + "+variant" if variant else how, variant):
                    return True
            path = f"{directory.text}/{name}"
            if self.probe(search, path, how + "+variant" if directory.variant else how,
                          directory.variant):
                return True
            if not self.musl and self._abandons_list(path, directory.text):
                search.skipped.append(f"{path} (open fails, not with ENOENT: the loader "
                                      f"abandons the rest of this {how} list)")
                return False
        return False

    def _abandons_list(self, path: str, directory: str) -> bool:
        """glibc's open_path gives up on its list when the directory exists but
        opening the file in it fails with an error other than ENOENT or EACCES:
        a symlink loop (ELOOP) or a link through a file (ENOTDIR)."""
        return self.walker.resolve(path).status in (LOOP, NOTDIR) and \
            self.walker.resolve(directory).status == DIR

    def _probe_cache(self, search: Search, requester: Obj, name: str) -> bool:
        cache, _ = self.ctx.ldcache(self.facts)
        if cache is None:
            search.searched.append(f"{self.facts.cache_path} (absent)")
            return False
        search.searched.append("ld.so.cache")
        entries = cache.lookup(name, self.facts.arch.cache_flags)
        if requester.info.nodeflib:  # glibc drops cache hits under a system directory
            prefixes = tuple(d.rstrip("/") + "/" for d in self.facts.system_dirs)
            entries = [e for e in entries if not e.value.startswith(prefixes)]
        for entry in self._cache_variants([e for e in entries if e.variant]):
            if self.probe(search, entry.value, "cache+variant" if self.any_cpu else "cache",
                         self.any_cpu):
                return True
        for entry in [e for e in entries if not e.variant][:1]:
            if self.probe(search, entry.value, "cache", False):
                return True
            if not self.walker.resolve(entry.value).exists:
                self.ctx.out.warn(f"stale ld.so.cache entry: {name} -> {entry.value} "
                                  "(missing; the loader falls back to the system directories)")
        return False

    def _cache_variants(self, entries: list) -> list:  # type: ignore[type-arg]
        if self.any_cpu:
            return entries
        ranked = []
        for entry in entries:
            level = re.search(r"/glibc-hwcaps/([^/]+)/", entry.value)
            if level and level.group(1) in self.hwcaps:
                ranked.append((self.hwcaps.index(level.group(1)), entry))
        return [entry for _, entry in sorted(ranked, key=lambda pair: pair[0])]
