"""The shared libraries a Python needs, found by the ELF resolver, never by ldd.

The interpreter and each extension module are followed on the host; what
they load is copied to the same paths in the image, except libpython, which
moves with the interpreter to the image's /usr (a pyenv python's RUNPATH
names its host prefix, which the image does not have; the loader's default
directories find /usr/lib).  The host's /etc (passwd, resolv.conf,
ld.so.cache) is never copied: an image gets its own.  Afterwards the same
resolver, run inside the image, must find everything, and find our libpython.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from acigen.errors import HelperError
from acigen.helpers import elf
from acigen.helpers.python_env.probe import PythonFacts
from acigen.helpers.rootfs.root import Root

# NSS and the resolver come from libc when the image has no nsswitch.conf;
# the host's nsswitch.conf (systemd, sss, ...) says nothing about the image
RULES = ("libgcc_s", "gconv")
DEFAULT_NSS = ("libnss_files.so.2", "libnss_dns.so.2")  # glibc's defaults, stubs since 2.34


@dataclass
class HostLibs:
    copy: list[str]  # host paths to copy to the same paths (libraries, loader, their links)
    moved: dict[str, str]  # host file -> image path (libpython)
    broken: dict[str, str] = field(default_factory=dict)  # module -> why it cannot load
    warnings: list[str] = field(default_factory=list)


def host_closure(facts: PythonFacts, modules: Sequence[str]) -> HostLibs:
    """What the interpreter and MODULES (host paths) load, and where it goes."""
    exe = facts.executable
    core = elf.closure("/", [exe], rules=RULES)
    if core.problems:
        raise HelperError(f"{exe} cannot run on this host: " + "; ".join(core.problems[:3]))
    moved = _libpython(facts, core)
    nss = _default_nss(core)
    found = elf.closure("/", [exe, *modules, *nss], rules=RULES)
    broken = _broken_modules(modules) if found.problems else {}
    if broken:
        found = elf.closure("/", [exe, *[m for m in modules if m not in broken], *nss],
                            rules=RULES)
    if found.problems:
        raise HelperError(f"{exe} cannot load its libraries: " + "; ".join(found.problems[:3]))
    data = {need.name for need in found.needs if need.how in elf.DATA_HOWS}
    skip = {os.path.realpath(path) for path in moved}
    ours = (facts.stdlib + "/", facts.dynload + "/")
    copy = [path for path in found.files
            if path not in data and path != exe and os.path.realpath(path) not in skip
            and not path.startswith("/etc/") and not path.startswith(ours)]
    return HostLibs(copy, moved, broken, list(found.warnings))


def _libpython(facts: PythonFacts, core: elf.Closure) -> dict[str, str]:
    moved = {}
    for need in core.needs:
        if need.requester == facts.executable and need.name.startswith("libpython") \
                and need.provider:
            real = os.path.realpath(need.provider)
            if real.startswith(facts.prefix.rstrip("/") + "/"):
                image_dir = facts.image_path(os.path.dirname(real), facts.prefix)
                moved[need.provider] = posixpath.join(image_dir, need.name)
    return moved


def _broken_modules(modules: Sequence[str]) -> dict[str, str]:
    """Extension modules that cannot load on the host either, one by one."""
    broken = {}
    for module in modules:
        problems = elf.closure("/", [module], rules=RULES).problems
        if problems:
            broken[module] = problems[0]
    return broken


def _default_nss(core: elf.Closure) -> list[str]:
    libc = next((n.provider for n in core.needs
                 if n.name.startswith("libc.so.") and n.provider), None)
    if libc is None:
        return []
    directory = os.path.dirname(os.path.realpath(libc))
    return [p for p in (os.path.join(directory, n) for n in DEFAULT_NSS) if os.path.isfile(p)]


def check_in_image(root_dir: str, exe: str, modules: Sequence[str],
                   moved: dict[str, str]) -> list[str]:
    """The interpreter and MODULES (image paths) must load inside the image, with our
    libpython; returns the resolver's warnings."""
    found = elf.closure(root_dir, [exe, *modules], rules=RULES)
    if found.problems:
        raise HelperError("the copied Python will not run in the image: "
                          + "; ".join(found.problems[:3]),
                          hint="an image whose libraries are older than the host's cannot "
                               "run the host's Python")
    expected = set(moved.values())
    with Root(root_dir) as root:
        ours = {_identity(root, path) for path in expected}
        for need in found.needs:
            if need.requester == exe and need.name.startswith("libpython") and need.provider \
                    and _identity(root, need.provider) not in ours:
                raise HelperError(f"in the image {exe} would load {need.provider}, not the "
                                  f"{need.name} copied with it",
                                  hint="the image has its own libpython of the same version: "
                                       "use the image's python, or name that one in "
                                       "python_exe")
    return list(found.warnings)


def _identity(root: Root, path: str) -> tuple[int, int] | None:
    try:
        fd = root.open(path)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        return st.st_dev, st.st_ino
    finally:
        os.close(fd)


def has_symbols(path: str) -> bool:
    """Whether PATH has a static symbol table or debug sections to strip."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        with open(path, "rb") as stream:
            return any(s.name == ".symtab" or s.name.startswith((".debug", ".zdebug"))
                       for s in ELFFile(stream).iter_sections())
    except ELFError:
        return False


def stripped(path: str) -> tuple[bytes, bool]:
    """PATH's bytes stripped as distributions strip what they ship (objcopy
    --strip-unneeded: no debug info, no symbols the loader does not need), and
    whether anything was stripped.  A build with debug info (pyenv's) is 3-4 times
    the size; the dynamic symbols extension modules link against stay."""
    objcopy = shutil.which("objcopy", path="/usr/bin:/bin")
    if objcopy is None or not has_symbols(path):
        with open(path, "rb") as src:
            return src.read(), False
    with tempfile.TemporaryDirectory(prefix="acigen-strip-") as tmp:
        out = os.path.join(tmp, "stripped")
        done = subprocess.run([objcopy, "--strip-unneeded", path, out], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise HelperError(f"objcopy --strip-unneeded {path} failed: "
                              f"{done.stderr.strip()}")
        with open(out, "rb") as src:
            return src.read(), True
