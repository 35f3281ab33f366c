"""Oracle: on a Debian bookworm minbase root, every ELF executable's closure agrees with the
root's own loader run inside the root (`chroot ROOT ld.so --list PROG`), by (dev, inode).

The only differences allowed are CPU-specific alternatives and what the documented run-time
rules add (NSS modules, libgcc_s, gconv modules, and their own dependencies), which a
loader's trace never shows because libc dlopens them later.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from acigen.helpers.elf import DATA_HOWS, Closure, closure, elffile
from acigen.helpers.rootfs.walk import Walker
from tests.support.rootfs import debian_minbase_tree

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("debootstrap"),
    reason="needs root (chroot) and debootstrap for the Debian root")

LOADER = "/lib64/ld-linux-x86-64.so.2"
RULE_HOWS = ("nss", "libgcc_s", "gconv")


@pytest.fixture(scope="module")
def minbase(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return debian_minbase_tree(tmp_path_factory.mktemp("minbase") / "root")


def executables(root: Path) -> list[str]:
    """Regular, executable ELF files with an interpreter under /usr/{bin,sbin,lib}."""
    found = []
    for top in ("usr/bin", "usr/sbin", "usr/lib"):
        for directory, _, names in os.walk(root / top):
            for name in names:
                host = os.path.join(directory, name)
                st = os.lstat(host)
                if not (os.path.isfile(host) and not os.path.islink(host) and st.st_mode & 0o111):
                    continue
                with open(host, "rb") as stream:
                    if stream.read(4) != b"\x7fELF":
                        continue
                if elffile.load(host, st).interp:
                    found.append("/" + os.path.relpath(host, root))
    return sorted(found)


def loader_lists(root: Path, programs: list[str]) -> dict[str, list[str]]:
    """What the root's loader maps for each program, in one chroot."""
    script = 'for p; do echo "=== $p"; ' + LOADER + ' --list "$p" 2>&1; done'
    proc = subprocess.run(["/usr/sbin/chroot", str(root), "/bin/sh", "-c", script, "sh",
                           *programs], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin"})
    lists: dict[str, list[str]] = {}
    current: list[str] = []
    for line in proc.stdout.splitlines():
        if line.startswith("=== "):
            current = lists.setdefault(line[4:], [])
        elif "linux-vdso" not in line:
            found = re.match(r"\s+\S+ => (/\S+) \(0x", line) or re.match(r"\s+(/\S+) \(0x", line)
            assert found, f"unexpected loader output: {line!r}"
            current.append(found.group(1))
    return lists


def identity(walker: Walker, path: str) -> tuple[int, int]:
    st = os.stat(walker.host(walker.resolve(path).path))
    return st.st_dev, st.st_ino


def explained(walker: Walker, result: Closure) -> set[tuple[int, int]]:
    """Objects kept for a documented reason the loader's trace cannot show: rule-added
    objects and everything they need, and every member of a CPU-variant group."""
    varied = {(n.requester, n.name) for n in result.needs if n.how.endswith("+variant")}
    reasons = {n.provider for n in result.needs if n.provider and (
        n.how in RULE_HOWS or (n.requester, n.name) in varied)}
    while True:
        more = {n.provider for n in result.needs if n.provider and n.requester in reasons}
        if more <= reasons:
            return {identity(walker, p) for p in reasons}
        reasons |= more


def test_closure_agrees_with_the_roots_own_loader(minbase: Path):
    programs = executables(minbase)
    assert len(programs) > 250
    lists = loader_lists(minbase, programs)
    walker = Walker(str(minbase))
    for program in programs:
        result = closure(str(minbase), [program])
        assert result.problems == (), program
        mapped = {identity(walker, p) for p in [program, *lists[program]]}
        ours = {identity(walker, n.provider) for n in result.needs
                if n.provider and n.how not in DATA_HOWS} | {identity(walker, program)}
        assert mapped <= ours, (program, "missed by the resolver")
        extra = ours - mapped
        assert extra <= explained(walker, result), (program, "kept without a reason")
        strict = closure(str(minbase), [program], rules=())
        assert {identity(walker, n.provider) for n in strict.needs
                if n.provider and n.how not in DATA_HOWS} | {identity(walker, program)} == \
            mapped, (program, "loader simulation alone differs")


def test_one_call_equals_the_union_of_single_calls(minbase: Path):
    programs = executables(minbase)[::10]
    together = closure(str(minbase), programs)
    union: set[str] = set()
    for program in programs:
        union.update(closure(str(minbase), [program]).files)
    assert set(together.files) == union
