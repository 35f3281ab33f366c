"""The resolver's result types (re-exported by acigen.helpers.elf)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    """One edge: REQUESTER needs NAME, which resolved to PROVIDER (None if unresolved).

    how says why or how the provider was chosen:
      interp                 PT_INTERP of an executable
      loaded                 the name matched an object already loaded (name or SONAME)
      path                   a name with a slash, opened as written (after $ORIGIN etc.)
      rpath, ld_library_path, runpath, cache, conf, system
                             the glibc search step that found it (conf: an ld.so.conf
                             directory, cache_mode "conf" or "both") (musl: rpath/runpath,
                             ld_library_path, system); "+variant" when the file is a
                             CPU-specific alternative (glibc-hwcaps, legacy hwcaps,
                             $PLATFORM) kept because some CPU could pick it
      musl-libc              a libc/libpthread/... name musl satisfies with its loader
      preload                /etc/ld.so.preload or the target's LD_PRELOAD
      nss, libgcc_s, gconv   run-time rules: objects glibc dlopens by itself
      devlink                opt-in rule: the unversioned libfoo.so link of a kept library
      shebang, env           a script's interpreter; the program `env` runs via PATH
      not-found, fatal       unresolved (provider None): nothing found, or the first
                             candidate stops the loader (see problems for the sentence)
      ld.so.cache, ld.so.conf, ld.so.preload, musl-path, nss-config, gconv-config
                             data files the loader or libc reads (name = their path);
                             ld.so.conf (and its includes) only in cache_mode conf/both
    """

    requester: str
    name: str
    provider: str | None
    how: str


DATA_HOWS = frozenset({"ld.so.cache", "ld.so.conf", "ld.so.preload", "musl-path",
                       "nss-config", "gconv-config"})


@dataclass(frozen=True)
class Closure:
    """What a set of programs needs at run time inside a root.

    files: sorted absolute in-root paths to keep: entries, every symlink traversed (file
    and directory links such as /lib, /lib64), final files, and rule-added files; not plain
    parent directories.  problems: unresolved names, fatal candidates, missing symbol
    versions (one full sentence each).  warnings: things worth knowing that do not break
    the programs as far as the loader is concerned.
    """

    files: tuple[str, ...]
    needs: tuple[Need, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "files": list(self.files),
            "needs": [{"requester": n.requester, "name": n.name, "provider": n.provider,
                       "how": n.how} for n in self.needs],
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }
