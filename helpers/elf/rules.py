"""Run-time rules: what glibc loads by itself, which no ELF header names.

Each rule maps names the way glibc's own dlopen does (requester = libc, so the program's
RPATH chain still applies) and follows their closure.  Rules apply to glibc programs only:
  nss       /etc/nsswitch.conf and the libnss_<service>.so.2 of every service it names
            (files and dns are built into libc since 2.34; their stubs are kept if present),
            plus the files NSS and the resolver read
  libgcc_s  libgcc_s.so.1, dlopened for pthread_cancel/pthread_exit and backtraces
  gconv     when some object imports iconv_open: the gconv configuration and every module
            (the charsets a program will ask for are unknown)
  devlink   the unversioned libfoo.so next to a kept libfoo.so.N, for programs that dlopen it
"""

from __future__ import annotations

import posixpath
import re

from acigen.helpers.elf.loader import Process
from acigen.helpers.elf.objects import Obj
from acigen.helpers.rootfs.walk import FILE, Walk

NSSWITCH = "/etc/nsswitch.conf"
NSS_FILES = ("/etc/nsswitch.conf", "/etc/host.conf", "/etc/hosts", "/etc/resolv.conf",
             "/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/networks",
             "/etc/passwd", "/etc/group")
BUILTIN_NSS = ("files", "dns")  # inside libc.so.6 since glibc 2.34


def apply(proc: Process) -> None:
    rules = proc.ctx.rules
    libc = _libc(proc)
    if libc is not None:
        if "libgcc_s" in rules:
            _libgcc_s(proc, libc)
        if "nss" in rules:
            _nss(proc, libc)
        if "gconv" in rules and any("iconv_open" in o.info.imports for o in proc.objects):
            _gconv(proc, libc)
    if "devlink" in rules:
        _devlinks(proc)


def _libc(proc: Process) -> Obj | None:
    if proc.musl:
        return None
    return next((o for o in proc.objects if (o.info.soname or "").startswith("libc.so.")),
                None)


def _dlopen(proc: Process, libc: Obj, name: str, how: str) -> bool:
    found = proc.request(libc, name, how=how, on_fail="quiet" if how != "gconv" else "warn")
    proc.run()
    return bool(found)


def _libgcc_s(proc: Process, libc: Obj) -> None:
    if not _dlopen(proc, libc, "libgcc_s.so.1", "libgcc_s"):
        proc.ctx.out.warn(f"libgcc_s.so.1 not found for {proc.program}: glibc aborts if "
                          "the program calls pthread_cancel or pthread_exit")


def nss_services(text: str) -> list[str]:
    """Service names of an nsswitch.conf, in order of appearance ([actions] dropped)."""
    services: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        if ":" not in line:
            continue
        for word in re.sub(r"\[[^\]]*\]", " ", line.split(":", 1)[1]).split():
            if word not in services:
                services.append(word)
    return services


def _nss_config(proc: Process) -> tuple[list[str], Walk]:
    memo = proc.ctx.memo.get("nss")
    if memo is None:
        walk = proc.walker.resolve(NSSWITCH)
        services = list(BUILTIN_NSS)  # glibc's defaults without a file
        if walk.status == FILE:
            with proc.walker.open(walk.path) as stream:
                services = nss_services(stream.read().decode("utf-8", "surrogateescape"))
        memo = proc.ctx.memo["nss"] = (services, walk)
    return memo  # type: ignore[return-value]


def _nss(proc: Process, libc: Obj) -> None:
    services, _ = _nss_config(proc)
    builtin = proc.facts.version is None or proc.facts.version >= (2, 34)
    for service in services:
        name = f"libnss_{service}.so.2"
        if _dlopen(proc, libc, name, "nss") or (builtin and service in BUILTIN_NSS):
            continue
        proc.ctx.out.warn(f"NSS service {service!r} in {NSSWITCH}: {name} not found "
                          "(glibc skips the service at run time)")
    for path in NSS_FILES:
        walk = proc.walker.resolve(path)
        if walk.status == FILE:
            proc.edge(proc.program, path, walk, "nss-config")


def _gconv_dirs(proc: Process, libc: Obj) -> list[str]:
    # the module directory is compiled into libc (e.g. /usr/lib/x86_64-linux-gnu/gconv);
    # GCONV_PATH adds directories in front unless the program is secure
    key = ("gconv", libc.walk.path)
    found = proc.ctx.memo.get(key)
    if found is None:
        with proc.walker.open(libc.walk.path) as stream:
            match = re.search(rb"(?<=\0)(/[\x21-\x7e]*/gconv)\0", stream.read())
        found = match.group(1).decode() if match else f"/usr/{proc.facts.lib}/gconv"
        proc.ctx.memo[key] = found
    extra = proc.ctx.env.get("GCONV_PATH", "") if not proc.secure else ""
    return [d for d in extra.split(":") if d.startswith("/")] + [str(found)]


def _gconv(proc: Process, libc: Obj) -> None:
    for directory in _gconv_dirs(proc, libc):
        configs = [f"{directory}/gconv-modules", f"{directory}/gconv-modules.cache",
                   *proc.walker.glob(f"{directory}/gconv-modules.d/*.conf")]
        for path in configs:
            walk = proc.walker.resolve(path)
            if walk.status == FILE:
                proc.edge(proc.program, path, walk, "gconv-config")
        for entry in proc.walker.listdir(directory):
            if entry.endswith(".so"):
                _dlopen(proc, libc, f"{directory}/{entry}", "gconv")


def _devlinks(proc: Process) -> None:
    for obj in list(proc.objects):
        head, tail = posixpath.split(obj.path)
        stem = tail.split(".so", 1)[0]
        if ".so." not in tail:
            continue
        walk = proc.walker.resolve(f"{head}/{stem}.so")
        if walk.status == FILE and walk.path == obj.walk.path:
            proc.edge(obj, f"{head}/{stem}.so", walk, "devlink")
