"""The closure of a set of programs: classify each entry, simulate one process per program.

An entry is a script (its interpreter, and for `env` the program found through the target
PATH, become entries too), an ELF executable (simulated with its own PT_INTERP's loader),
a shared object (simulated with the root's usual loader for its ABI), or a static binary
(nothing to follow).  Anything else is kept and warned about.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping, Sequence

from acigen.helpers.elf import elffile, scripts, versions
from acigen.helpers.elf import rules as runtime_rules
from acigen.helpers.elf.context import Context
from acigen.helpers.elf.elffile import ElfError, ElfInfo
from acigen.helpers.elf.loader import ABSENT, Process
from acigen.helpers.elf.model import DATA_HOWS, Closure, Need
from acigen.helpers.elf.search import tidy
from acigen.helpers.rootfs.walk import DIR, FILE, OTHER, Walk, Walker

DEFAULT_RULES = ("nss", "libgcc_s", "gconv")


def closure(root: str, programs: Sequence[str], *, env: Mapping[str, str] | None = None,
            workdir: str = "/", cpu: str = "any", cache_mode: str = "cache",
            allow_unresolved: Collection[str] = (),
            rules: Collection[str] = DEFAULT_RULES) -> Closure:
    """Everything PROGRAMS (absolute paths inside ROOT) need at run time, resolved as the
    root's own loader would, without running anything from ROOT.

    env is the *target* environment (PATH, LD_LIBRARY_PATH, LD_PRELOAD, GCONV_PATH from the
    image config), never os.environ.  workdir stands in for the process's working
    directory.  cpu is "any" (keep every CPU-specific variant) or a glibc-hwcaps level
    such as "x86-64-v3".  cache_mode: "cache" (what the root's ld.so.cache says, as at run
    time), "conf" (search ld.so.conf directories instead, as after ldconfig) or "both".
    """
    ctx = Context(root, env, workdir, cpu, cache_mode, allow_unresolved, rules)
    for program in programs:
        _entry(ctx, program, 0)
    return ctx.out.result()


def _entry(ctx: Context, program: str, depth: int) -> None:
    path = tidy(program if program.startswith("/") else posixpath.join(ctx.workdir, program))
    if ("entry", path) in ctx.memo:
        return
    ctx.memo[("entry", path)] = True
    walk = ctx.walker.resolve(path)
    ctx.out.keep(walk)
    if walk.status in ABSENT:
        ctx.out.problem(f"{path}: not found ({walk.status}: {walk.path})")
    elif walk.status == DIR:
        ctx.out.problem(f"{path}: is a directory, not a program")
    elif walk.status == OTHER:
        ctx.out.warn(f"{path}: not a regular file; kept as it is")
    else:
        with ctx.walker.open(walk.path) as stream:
            head = stream.read(scripts.BUF_SIZE)
        if head.startswith(b"#!"):
            _script(ctx, path, head, depth)
        elif head.startswith(b"\x7fELF"):
            _elf(ctx, path, walk)
        else:
            ctx.out.warn(f"{path}: neither an ELF file nor a script; kept as it is")


def _script(ctx: Context, path: str, head: bytes, depth: int) -> None:
    try:
        shebang = scripts.parse(head)
    except scripts.ShebangError as exc:
        ctx.out.problem(f"{path}: {exc}")
        return
    assert shebang is not None
    if depth >= scripts.MAX_NESTING:
        ctx.out.problem(f"{path}: too many nested script interpreters (the kernel allows "
                        f"{scripts.MAX_NESTING})")
        return
    interp = shebang.interpreter
    target = interp if interp.startswith("/") else posixpath.join(ctx.workdir, interp)
    walk = ctx.walker.resolve(target)
    ctx.out.keep(walk)
    if walk.status != FILE:
        ctx.out.problem(f"{path}: interpreter {interp!r} not found ({walk.status}: {walk.path})")
        ctx.out.need(Need(path, interp, None, "shebang"))
        return
    ctx.out.need(Need(path, interp, tidy(target), "shebang"))
    _entry(ctx, target, depth + 1)
    if "env" in (posixpath.basename(interp), posixpath.basename(walk.path)):
        program = scripts.env_program(shebang.argument)
        if program:
            _env(ctx, path, program, depth)


def _env(ctx: Context, path: str, program: str, depth: int) -> None:
    if "/" in program:
        candidates = [program if program.startswith("/") else
                      posixpath.join(ctx.workdir, program)]
    else:
        candidates = [posixpath.join(d if d.startswith("/") else
                                     posixpath.join(ctx.workdir, d), program)
                      for d in scripts.path_dirs(ctx.env)]
    for candidate in candidates:
        walk = ctx.walker.resolve(candidate)
        st = ctx.walker.lstat(walk.path) if walk.status == FILE else None
        if st is not None and st.st_mode & 0o111:
            ctx.out.keep(walk)
            ctx.out.need(Need(path, program, tidy(candidate), "env"))
            _entry(ctx, candidate, depth + 1)
            return
    ctx.out.need(Need(path, program, None, "env"))
    ctx.out.problem(f"{path}: env cannot find {program!r} (searched: {', '.join(candidates)})")


def _elf(ctx: Context, path: str, walk: Walk) -> None:
    try:
        info = ctx.elf(walk)
    except ElfError as exc:
        ctx.out.problem(f"{path}: {exc}")
        return
    if info.interp is None and not info.deps:
        if info.static_nss:
            ctx.out.warn(f"{path}: static glibc program using NSS: at run time it dlopens "
                         "libnss_* of the same glibc version, which is not followed")
        return  # static, static-pie, or a library that needs nothing: the file is all
    if info.interp is not None:
        _interp(ctx, path, info)
    facts = ctx.facts(info.interp, info)
    if info.interp is None and facts.interp is None:
        ctx.out.warn(f"{path}: shared object and the root has no loader for its ABI; "
                     "searching with default directories")
    _cpu_check(ctx, facts)
    proc = Process(ctx, path, walk, info, facts, library=info.interp is None)
    _loader_files(proc)
    proc.run()
    runtime_rules.apply(proc)
    _versions(proc)


def _interp(ctx: Context, path: str, info: ElfInfo) -> None:
    interp = info.interp or ""
    walk = ctx.walker.resolve(interp)
    ctx.out.keep(walk)
    if walk.status == FILE:
        ctx.out.need(Need(path, interp, interp, "interp"))
    else:
        ctx.out.need(Need(path, interp, None, "interp"))
        ctx.out.problem(f"{path}: interpreter {interp} not found ({walk.status}: {walk.path}); "
                        "the kernel cannot start it")


def _cpu_check(ctx: Context, facts) -> None:  # type: ignore[no-untyped-def]
    if ctx.cpu not in ("any", "baseline") and facts.glibc_hwcaps and (
            ctx.cpu not in facts.glibc_hwcaps):
        ctx.out.warn(f"cpu {ctx.cpu!r} is not a glibc-hwcaps level of this loader "
                     f"({', '.join(facts.glibc_hwcaps)}); treated as baseline")


def _loader_files(proc: Process) -> None:
    """Files the loader reads at start-up, and what they preload."""
    ctx, facts = proc.ctx, proc.facts
    names: list[str] = []
    if not proc.secure:
        names += re.split(r"[ :]+", ctx.env.get("LD_PRELOAD", ""))
    if facts.family == "glibc":
        if ctx.cache_mode != "conf":
            cache = ctx.walker.resolve(facts.cache_path)
            if cache.status == FILE:
                proc.edge(proc.program, facts.cache_path, cache, "ld.so.cache")
        if ctx.cache_mode != "cache":  # the conf step's directories come from these
            for path in ctx.conf(facts).files:
                proc.edge(proc.program, path, ctx.walker.resolve(path), "ld.so.conf")
        preload = ctx.walker.resolve(facts.preload_path)
        if preload.status == FILE:
            proc.edge(proc.program, facts.preload_path, preload, "ld.so.preload")
            with ctx.walker.open(preload.path) as stream:
                text = stream.read().decode("utf-8", "surrogateescape")
            names += re.split(r"[ \t\n:]+", text)
    for name in names:
        if name:
            proc.request(proc.exe, name, how="preload", on_fail="warn")


def path_of(proc: Process) -> str:
    return proc.program


def _versions(proc: Process) -> None:
    if proc.musl:
        return  # musl does not check symbol versions
    for obj in proc.objects:
        for file, _ in obj.info.verneed:
            for provider in proc.by_name.get(file, ()):
                problems, warnings = versions.check(obj.shown, obj.info, file,
                                                    provider.shown, provider.info)
                for text in problems:
                    proc.ctx.out.problem(text)
                for text in warnings:
                    proc.ctx.out.warn(text)


def check_versions(root: str, result: Closure) -> tuple[str, ...]:
    """Missing symbol versions along RESULT's edges, re-read from ROOT (e.g. the image a
    closure's files were copied into).  closure() already reports these as problems."""
    walker, found = Walker(root), {}
    for need in result.needs:
        if need.provider is None or need.how in DATA_HOWS or need.how in ("shebang", "env"):
            continue
        infos = [_parse(walker, need.requester), _parse(walker, need.provider)]
        if infos[0] is not None and infos[1] is not None:
            problems, _ = versions.check(need.requester, infos[0], need.name,
                                         need.provider, infos[1])
            found.update(dict.fromkeys(problems))
    return tuple(found)


def _parse(walker: Walker, path: str) -> ElfInfo | None:
    walk = walker.resolve(path)
    st = walker.lstat(walk.path) if walk.status == FILE else None
    if st is None:
        return None
    try:
        return elffile.load(walker.host(walk.path), st)
    except ElfError:
        return None
