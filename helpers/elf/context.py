"""State shared by all programs of one closure() call: the root, settings, results.

Name-to-file decisions are never shared between programs (each is its own process);
only file-level facts are: walks, parsed ELF files, loader facts, the cache, ld.so.conf.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Mapping

from acigen.helpers.elf import elffile, ldcache, ldconf
from acigen.helpers.elf.elffile import ElfInfo
from acigen.helpers.elf.facts import LoaderFacts, default_interp, learn
from acigen.helpers.elf.model import Closure, Need
from acigen.helpers.rootfs.walk import FILE, OTHER, Walk, Walker

CACHE_MODES = ("cache", "conf", "both")
RULES = ("nss", "libgcc_s", "gconv", "devlink")


class Collector:
    """Accumulates kept files, edges, problems and warnings, deduplicated, in order."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.needs: dict[Need, None] = {}
        self.problems: dict[str, None] = {}
        self.warnings: dict[str, None] = {}

    def keep(self, walk: Walk) -> None:
        """Keep every link on the way and the object itself (never a plain directory)."""
        self.files.update(walk.links)
        if walk.status in (FILE, OTHER):
            self.files.add(walk.path)

    def need(self, need: Need) -> None:
        self.needs[need] = None

    def problem(self, text: str) -> None:
        self.problems[text] = None

    def warn(self, text: str) -> None:
        self.warnings[text] = None

    def result(self) -> Closure:
        return Closure(tuple(sorted(self.files)), tuple(self.needs), tuple(self.problems),
                       tuple(w for w in self.warnings if w not in self.problems))


class Context:
    def __init__(self, root: str, env: Mapping[str, str] | None, workdir: str, cpu: str,
                 cache_mode: str, allow: Collection[str], rules: Collection[str]) -> None:
        if cache_mode not in CACHE_MODES:
            raise ValueError(f"cache_mode must be one of {', '.join(CACHE_MODES)}")
        unknown = set(rules) - set(RULES)
        if unknown:
            raise ValueError(f"unknown rules: {', '.join(sorted(unknown))}")
        self.walker = Walker(root)  # fresh: a tree pruned since the last call is re-read
        self.env = dict(env or {})
        self.workdir = workdir if workdir.startswith("/") else "/" + workdir
        self.cpu, self.cache_mode = cpu, cache_mode
        self.allow, self.rules = frozenset(allow), frozenset(rules)
        self.out = Collector()
        self._facts: dict[tuple[str | None, int, int, bool], LoaderFacts] = {}
        self._caches: dict[str, ldcache.LdCache | None] = {}
        self._conf: ldconf.LdConf | None = None
        self.memo: dict[object, object] = {}  # per-call memo for rules (nsswitch, gconv)

    def elf(self, walk: Walk) -> ElfInfo:
        """The parsed file WALK leads to; raises ElfError if the loader would reject it."""
        st = self.walker.lstat(walk.path)
        if st is None:
            raise elffile.ElfError("cannot open shared object file")
        return elffile.load(self.walker.host(walk.path), st)

    def facts(self, interp: str | None, info: ElfInfo) -> LoaderFacts:
        """Loader facts for a program with PT_INTERP INTERP (None: a shared library)."""
        if interp is None:
            interp = default_interp(self.walker, info)
        musl = any(n.startswith("libc.musl-") for n in info.needed)
        key = (interp, info.elfclass, info.e_machine, musl)
        found = self._facts.get(key)
        if found is None:
            loader = None
            if interp is not None:
                walk = self.walker.resolve(interp)
                if walk.status == FILE:
                    try:
                        loader = self.elf(walk)
                    except elffile.ElfError:
                        loader = None
            found = self._facts[key] = learn(self.walker, interp, info, loader)
        return found

    def ldcache(self, facts: LoaderFacts) -> tuple[ldcache.LdCache | None, Walk]:
        """The root's cache as FACTS' loader reads it (None when absent or unreadable)."""
        walk = self.walker.resolve(facts.cache_path)
        if facts.cache_path not in self._caches:
            parsed = None
            if walk.status == FILE:
                try:
                    with self.walker.open(walk.path) as stream:
                        parsed = ldcache.parse(stream.read())
                except (OSError, ldcache.CacheError) as exc:
                    self.out.warn(f"{facts.cache_path}: unreadable ({exc}); the loader "
                                  "ignores it, so this does too")
            self._caches[facts.cache_path] = parsed
        return self._caches[facts.cache_path], walk

    def conf(self, facts: LoaderFacts) -> ldconf.LdConf:
        """The root's ld.so.conf (ldconfig's input), next to the loader's cache."""
        if self._conf is None:
            path = posixpath.join(posixpath.dirname(facts.cache_path), "ld.so.conf")
            self._conf = ldconf.parse(self.walker, path)
            for warning in self._conf.warnings:
                self.out.warn(warning)
        return self._conf

    def conf_dirs(self, facts: LoaderFacts) -> tuple[str, ...]:
        return self.conf(facts).dirs

    def allowed(self, name: str) -> bool:
        return name in self.allow or posixpath.basename(name) in self.allow
