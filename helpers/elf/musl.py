"""musl's dynamic loader (ldso/dynlink.c), where it differs from glibc's.

Names starting lib{c,pthread,rt,m,dl,util,xnet}. are the loader itself; reuse is by the
basename a library was found under (never DT_SONAME) and by inode; the search is
LD_LIBRARY_PATH, then the rpath of the requester and of every object up its needed-by chain
(RUNPATH replaces RPATH on one object, but either is inherited), then the path file
<prefix>/etc/ld-musl-<arch>.path (split on ':' and newlines; empty means no path) or
/lib:/usr/local/lib:/usr/lib.  Only $ORIGIN is expanded, and the first file that opens
wins, whatever its class or machine.  musl reads no cache and checks no symbol versions.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from acigen.helpers.elf.objects import Obj, Search
from acigen.helpers.elf.search import Expanded, anchor, expand_musl
from acigen.helpers.rootfs.walk import FILE

if TYPE_CHECKING:
    from acigen.helpers.elf.loader import Process

RESERVED = ("c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet.")
DEFAULT_PATH = "/lib:/usr/local/lib:/usr/lib"


def request(proc: Process, requester: Obj, name: str, kind: str, how: str | None,
            on_fail: str) -> list[Obj]:
    """Map NAME for REQUESTER the way musl's load_library does."""
    if name.startswith("lib") and name[3:].startswith(RESERVED) and proc.loader_obj:
        proc.edge(requester, name, proc.loader_obj, how or "musl-libc")
        _keep_alias(proc, name)
        return [proc.loader_obj]
    if "/" in name:
        search = Search(searched=[name])
        proc.probe(search, anchor(name, proc.ctx.workdir)[0], "path", False)
    else:
        known = proc.by_name.get(name)
        if known:
            for obj in known:
                proc.edge(requester, name, obj, how or "loaded")
            return list(known)
        search = _search(proc, requester, name)
    return proc.settle(requester, name, name, kind, search, how, on_fail)


def _search(proc: Process, requester: Obj, name: str) -> Search:
    search = Search()
    llp = proc.ctx.env.get("LD_LIBRARY_PATH")
    if llp and not proc.secure and proc.probe_dirs(
            search, _dirs(proc, llp), name, "ld_library_path"):
        return search
    obj: Obj | None = requester
    while obj is not None:  # the rpath of every object up the needed-by chain
        raw = obj.info.runpath if obj.info.runpath is not None else obj.info.rpath
        if raw is not None:
            text = expand_musl(raw, obj.origin)
            how = "runpath" if obj.info.runpath is not None else "rpath"
            if text is None:
                proc.ctx.out.warn(f"{obj.shown}: {how} {raw!r} has a token musl does not "
                                  "expand; musl ignores the whole path")
            elif proc.probe_dirs(search, _dirs(proc, text), name, how):
                return search
        obj = obj.loader
    proc.probe_dirs(search, _dirs(proc, system_path(proc)), name, "system")
    return search

def _dirs(proc: Process, text: str) -> list[Expanded]:
    dirs = [anchor(d, proc.ctx.workdir)[0] for d in re.split(r"[:\n]", text) if d]
    return [Expanded(d, False) for d in dirs]

def system_path(proc: Process) -> str:
    """The path file's contents (whole, even empty), or musl's built-in default."""
    path = proc.facts.musl_path_file or ""
    walk = proc.walker.resolve(path) if path else None
    if walk is None or walk.status != FILE:
        return DEFAULT_PATH
    proc.edge(proc.program, path, walk, "musl-path")
    key = ("musl-path", walk.path)
    if key not in proc.ctx.memo:
        with proc.walker.open(walk.path) as stream:
            text = stream.read().split(b"\0", 1)[0]
        proc.ctx.memo[key] = text.decode("utf-8", "surrogateescape")
    return str(proc.ctx.memo[key])

def _keep_alias(proc: Process, name: str) -> None:
    # Alpine's libc.musl-<arch>.so.1 -> ld-musl-<arch>.so.1: not used by musl's own
    # loader, but cheap, and other tools look for it
    loader = proc.loader_obj
    own = proc.walker.lstat(loader.walk.path) if loader else None
    if own is None or proc.facts.interp is None:
        return
    dirs = [posixpath.dirname(proc.facts.interp)]
    dirs += [d.text for d in _dirs(proc, system_path(proc))]
    for directory in dirs:
        walk = proc.walker.resolve(f"{directory}/{name}")
        st = proc.walker.lstat(walk.path)
        if walk.status == FILE and st and (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
            proc.ctx.out.keep(walk)
            return
