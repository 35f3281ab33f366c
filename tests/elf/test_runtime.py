"""The §10 cases whose answer only the real loader can settle, built with gcc and patchelf
and compared with glibc's own `ld.so --list` run inside the fixture root.

Equality is by (dev, inode).  In "any" CPU mode the resolver may keep more than the loader
maps on this CPU, but only CPU-specific alternatives (how ending in "+variant").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from acigen.helpers.elf import closure
from acigen.helpers.rootfs.walk import Walker
from tests.elf.elfwriter import EM_386, EM_AARCH64
from tests.elf.fixtures import Tree
from tests.elf.runtime import MUSL_LOADER, Builder, host_glibc, host_musl, identity, oracle

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("gcc") or not shutil.which("patchelf"),
    reason="needs root (chroot), gcc and patchelf")

Scenario = Callable[[Tree, Builder], tuple[str, dict[str, str]]]


def runpath_not_inherited(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/opt/app/bin/app", exe=True, needed=("libb.so",), runpath="$ORIGIN/../lib")
    b.object(t, "/opt/app/lib/libb.so", needed=("libc3.so",))
    b.object(t, "/opt/app/lib/libc3.so")
    b.object(t, "/usr/lib/libc3.so")
    return "/opt/app/bin/app", {}


def runpath_not_inherited_unresolved(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    runpath_not_inherited(t, b)
    os.unlink(t.host("/usr/lib/libc3.so"))
    return "/opt/app/bin/app", {}


def rpath_inherited(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/opt/app/bin/app", exe=True, needed=("libb.so",), rpath="$ORIGIN/../lib")
    b.object(t, "/opt/app/lib/libb.so", needed=("libc3.so",))
    b.object(t, "/opt/app/lib/libc3.so")
    b.object(t, "/usr/lib/libc3.so")
    return "/opt/app/bin/app", {}


def ld_library_path(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/p2", exe=True, needed=("liby.so",), runpath="/r")
    b.object(t, "/r/liby.so")
    b.object(t, "/env/liby.so")
    return "/usr/bin/p2", {"LD_LIBRARY_PATH": "/env"}


def breadth_first(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("liba.so", "libc3.so"), runpath="/A:/D")
    b.object(t, "/A/liba.so", needed=("libc3.so",), runpath="/X")
    b.object(t, "/X/libc3.so")
    b.object(t, "/D/libc3.so")
    return "/usr/bin/app", {}


def intermediate_rpath(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/opt/r11/exe", exe=True, needed=("liba.so",), rpath="$ORIGIN/a")
    b.object(t, "/opt/r11/a/liba.so", needed=("libb.so",), rpath="$ORIGIN/b")
    b.object(t, "/opt/r11/a/b/libb.so", needed=("libc3.so",))
    b.object(t, "/opt/r11/a/b/libc3.so")
    return "/opt/r11/exe", {}


def intermediate_runpath(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/opt/r11/exe", exe=True, needed=("liba.so",), rpath="$ORIGIN/a")
    b.object(t, "/opt/r11/a/liba.so", needed=("libb.so",), runpath="$ORIGIN/b")
    b.object(t, "/opt/r11/a/b/libb.so", needed=("libc3.so",))
    b.object(t, "/opt/r11/a/b/libc3.so")
    return "/opt/r11/exe", {}


def origin_at_link(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libh.so",), runpath="/h")
    b.object(t, "/h/libh.so", needed=("libg.so",), runpath="$ORIGIN/../b")
    t.link("/b/libg.so", "../a/libg.so")
    b.object(t, "/a/libg.so", needed=("libf.so",), runpath="$ORIGIN")
    b.object(t, "/b/libf.so")
    return "/usr/bin/app", {}


def physical_dotdot(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    t.link("/opt/app/lib", "../../srv/real/lib")
    b.object(t, "/opt/app/bin/app", exe=True, needed=("libx.so",), runpath="/opt/app/lib")
    b.object(t, "/srv/real/lib/libx.so", needed=("libdep.so",), rpath="$ORIGIN/../deps")
    b.object(t, "/srv/real/deps/libdep.so")
    b.object(t, "/opt/app/deps/libdep.so")
    return "/opt/app/bin/app", {}


def wrong_class_first(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libf.so",), runpath="/l32:/arm:/l64")
    t.lib("/l32/libf.so", elfclass=32, machine=EM_386)
    t.lib("/arm/libf.so", machine=EM_AARCH64)
    b.object(t, "/l64/libf.so")
    return "/usr/bin/app", {}


def dangling_candidate(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libf.so.1",), runpath="/r1:/r2")
    t.link("/r1/libf.so.1", "nowhere.so")
    b.object(t, "/r2/libf.so.1")
    return "/usr/bin/app", {}


def text_candidate(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    dangling_candidate(t, b)
    os.unlink(t.host("/r1/libf.so.1"))
    t.text("/r1/libf.so.1", "not ELF\n")
    return "/usr/bin/app", {}


def hwcaps(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libf.so.1",), runpath="/opt/l")
    b.object(t, "/opt/l/libf.so.1")
    b.object(t, "/opt/l/glibc-hwcaps/x86-64-v2/libf.so.1")
    b.object(t, "/opt/l/glibc-hwcaps/x86-64-v3/libf.so.1")
    return "/usr/bin/app", {}


def tokens(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libq.so", "libr.so", "libs.so"),
             runpath="/opt/$LIB/x:/opt/${PLATFORM}/y:/opt/$FOO/z")
    b.object(t, "/opt/lib/x86_64-linux-gnu/x/libq.so")
    for platform in ("haswell", "xeon_phi", "x86_64"):
        b.object(t, f"/opt/{platform}/y/libr.so")
    b.object(t, "/opt/$FOO/z/libs.so")
    return "/usr/bin/app", {}


def origin_in_needed(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/opt/s/bin/app", exe=True, needed=("$ORIGIN/sub/libo.so",))
    b.object(t, "/opt/s/bin/sub/libo.so")
    return "/opt/s/bin/app", {}


def nodeflib(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, runpath="/opt/l", ldflags=("-Wl,-z,nodefaultlib",))
    return "/usr/bin/app", {}


def filters(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("liba.so",), runpath="/f")
    b.object(t, "/f/liba.so", runpath="$ORIGIN",
             ldflags=("-Wl,--auxiliary=libaux.so", "-Wl,--filter=libflt.so"))
    b.object(t, "/f/libaux.so")
    b.object(t, "/f/libflt.so")
    return "/usr/bin/app", {}


def preload(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    t.text("/etc/ld.so.preload", "/usr/lib/libhook.so\n")
    b.object(t, "/usr/lib/libhook.so", needed=("libdl2.so",), runpath="$ORIGIN")
    b.object(t, "/usr/lib/libdl2.so")
    b.object(t, "/usr/bin/app", exe=True)
    return "/usr/bin/app", {}


SCENARIOS: list[Scenario] = [
    runpath_not_inherited, runpath_not_inherited_unresolved, rpath_inherited, ld_library_path,
    breadth_first, intermediate_rpath, intermediate_runpath, origin_at_link, physical_dotdot,
    wrong_class_first, dangling_candidate, text_candidate, hwcaps, tokens, origin_in_needed,
    nodeflib, filters, preload]


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    return Builder(tmp_path_factory.mktemp("stubs"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_agrees_with_the_real_loader(tmp_path: Path, builder: Builder, scenario: Scenario):
    tree = Tree(tmp_path / "root")
    host_glibc(tree)
    program, env = scenario(tree, builder)
    mapped, failed = oracle(tree.root, program, env)
    result = closure(str(tree.root), [program], env=env, rules=())
    assert bool(result.problems) == failed, result.problems
    walker = Walker(str(tree.root))
    ours = {identity(walker, program)}
    for need in result.needs:
        if need.provider and need.how not in ("ld.so.cache", "ld.so.preload"):
            ours.add(identity(walker, need.provider))
    if failed:
        return  # the loader stopped early; what it listed is partial
    assert mapped <= ours
    assert ours - mapped <= alternatives(walker, result)


def musl_runpath_inherited(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    t.text("/etc/ld-musl-x86_64.path", "/usr/local/lib\n/usr/lib\n")
    b.object(t, "/usr/bin/app", exe=True, needed=("libb.so", "libpthread.so.0"),
             runpath="$ORIGIN/../lib/app")
    b.object(t, "/usr/lib/app/libb.so", needed=("libc3.so",))
    b.object(t, "/usr/lib/app/libc3.so")
    return "/usr/bin/app", {}


def musl_empty_path_file(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    t.text("/etc/ld-musl-x86_64.path", "")
    b.object(t, "/usr/bin/app", exe=True, needed=("libq.so",))
    b.object(t, "/usr/lib/libq.so")
    return "/usr/bin/app", {}


def musl_default_path(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libq.so",))
    b.object(t, "/usr/local/lib/libq.so")
    b.object(t, "/usr/lib/libq.so")
    return "/usr/bin/app", {}


def musl_ld_library_path_first(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libq.so",), runpath="/r")
    b.object(t, "/r/libq.so")
    b.object(t, "/env/libq.so")
    return "/usr/bin/app", {"LD_LIBRARY_PATH": "/env"}


def musl_first_file_wins(t: Tree, b: Builder) -> tuple[str, dict[str, str]]:
    b.object(t, "/usr/bin/app", exe=True, needed=("libf.so",), runpath="/l32:/l64")
    t.lib("/l32/libf.so", elfclass=32, machine=EM_386)
    b.object(t, "/l64/libf.so")
    return "/usr/bin/app", {}


MUSL_SCENARIOS: list[Scenario] = [
    musl_runpath_inherited, musl_empty_path_file, musl_default_path,
    musl_ld_library_path_first, musl_first_file_wins]


@pytest.fixture(scope="module")
def musl_builder(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    if not shutil.which("musl-gcc"):
        pytest.skip("musl-gcc (musl-tools) is not installed")
    return Builder(tmp_path_factory.mktemp("musl-stubs"), cc="musl-gcc")


@pytest.mark.parametrize("scenario", MUSL_SCENARIOS, ids=lambda s: s.__name__)
def test_agrees_with_the_real_musl_loader(tmp_path: Path, musl_builder: Builder,
                                          scenario: Scenario):
    tree = Tree(tmp_path / "root")
    host_musl(tree)
    program, env = scenario(tree, musl_builder)
    mapped, failed = oracle(tree.root, program, env, loader=MUSL_LOADER)
    result = closure(str(tree.root), [program], env=env, rules=())
    assert bool(result.problems) == failed, result.problems
    if not failed:
        walker = Walker(str(tree.root))
        ours = {identity(walker, n.provider) for n in result.needs
                if n.provider and n.how != "musl-path"} | {identity(walker, program)}
        assert mapped == ours


def alternatives(walker: Walker, result) -> set[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """Every provider of a name that has CPU-specific variants, the fallback included."""
    varied = {(n.requester, n.name) for n in result.needs if n.how.endswith("+variant")}
    return {identity(walker, n.provider) for n in result.needs
            if (n.requester, n.name) in varied and n.provider}
