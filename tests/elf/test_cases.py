"""The test cases of research/elf-deps.md §10, one test (or a few) per case.

Each builds a fixture root with the ELF writer, asserts the exact kept set and that the
decoys are absent.  The numbers in the test names are the case numbers of §10.
"""

from __future__ import annotations

import pytest

from acigen.helpers.elf import check_versions
from tests.elf.conftest import DEBIAN_BASE, confined, kept, run
from tests.elf.elfwriter import (
    DF_1_NODEFLIB,
    DF_1_PIE,
    EM_386,
    EM_AARCH64,
    ET_DYN,
    ET_EXEC,
)
from tests.elf.fixtures import FEDORA_DIRS, Tree, cache_bytes, loader_rodata

MULTI = "/usr/lib/x86_64-linux-gnu"
X8664 = 0x303


def test_01_usr_merge_and_absolute_interpreter_link(debian, monkeypatch):
    debian.exe("/usr/bin/app", needed=["libc.so.6"])
    with confined(monkeypatch, debian.root) as seen:
        files = kept(debian, "/usr/bin/app")
    assert files == DEBIAN_BASE | {"/usr/bin/app"}
    assert seen  # the guard saw the resolver's reads, all inside the root


def test_02_absolute_directory_symlink(tree, monkeypatch):
    tree.link("/lib64", "/usr/lib64-fixture-XYZ")
    tree.lib("/usr/lib64-fixture-XYZ/ld-test.so.2", osabi=3,
             rodata=loader_rodata(FEDORA_DIRS, "lib64"))
    tree.exe("/usr/bin/app", interp="/lib64/ld-test.so.2")
    with confined(monkeypatch, tree.root):
        files = kept(tree, "/usr/bin/app")
    assert files == {"/usr/bin/app", "/lib64", "/usr/lib64-fixture-XYZ/ld-test.so.2"}


def _three_hops(debian: Tree) -> None:
    debian.lib("/usr/lib/real/libfoo.so.1.2.3", soname="libfoo.so.1")
    debian.link(f"{MULTI}/libfoo.so.1.2", "../real/libfoo.so.1.2.3")
    debian.link(f"{MULTI}/libfoo.so.1", "libfoo.so.1.2")
    debian.link(f"{MULTI}/libfoo.so", "libfoo.so.1")
    debian.exe("/usr/bin/app", needed=["libfoo.so.1", "libc.so.6"])


def test_03_three_hop_soname_chain(debian):
    _three_hops(debian)
    chain = {f"{MULTI}/libfoo.so.1", f"{MULTI}/libfoo.so.1.2", "/usr/lib/real/libfoo.so.1.2.3"}
    assert kept(debian, "/usr/bin/app") == DEBIAN_BASE | chain | {"/usr/bin/app"}


def test_03_dev_link_rule_keeps_the_unversioned_name(debian):
    _three_hops(debian)
    assert f"{MULTI}/libfoo.so" in kept(debian, "/usr/bin/app", rules=("devlink",))


def _not_inherited(debian: Tree, tag: str, system_copy: bool = True) -> None:
    debian.exe("/opt/app/bin/app", needed=["libb.so", "libc.so.6"], **{tag: "$ORIGIN/../lib"})
    debian.lib("/opt/app/lib/libb.so", needed=["libc3.so"])
    debian.lib("/opt/app/lib/libc3.so")
    if system_copy:
        debian.lib("/usr/lib/libc3.so")


def test_04_runpath_is_not_inherited(debian):
    _not_inherited(debian, "runpath")
    files = kept(debian, "/opt/app/bin/app")
    assert files == DEBIAN_BASE | {"/opt/app/bin/app", "/opt/app/lib/libb.so",
                                   "/usr/lib/libc3.so"}
    assert "/opt/app/lib/libc3.so" not in files


def test_04_runpath_not_inherited_unresolved(debian):
    _not_inherited(debian, "runpath", system_copy=False)
    result = run(debian, "/opt/app/bin/app")
    assert len(result.problems) == 1
    assert result.problems[0].startswith(
        "libc3.so needed by /opt/app/lib/libb.so (loading /opt/app/bin/app): not found "
        "(searched: /etc/ld.so.cache (absent), /lib/x86_64-linux-gnu")


def test_05_rpath_is_inherited(debian):
    _not_inherited(debian, "rpath")
    files = kept(debian, "/opt/app/bin/app")
    assert files == DEBIAN_BASE | {"/opt/app/bin/app", "/opt/app/lib/libb.so",
                                   "/opt/app/lib/libc3.so"}
    assert "/usr/lib/libc3.so" not in files


def test_06_runpath_voids_rpath_on_the_same_object(debian):
    debian.exe("/usr/bin/app", needed=["libx.so", "libc.so.6"], rpath="/a", runpath="/b")
    debian.lib("/a/libx.so")
    debian.lib("/b/libx.so")
    files = kept(debian, "/usr/bin/app")
    assert files == DEBIAN_BASE | {"/usr/bin/app", "/b/libx.so"}


def test_07_ld_library_path_precedence(debian, monkeypatch):
    debian.exe("/usr/bin/p1", needed=["liby.so", "libc.so.6"], rpath="/r")
    debian.exe("/usr/bin/p2", needed=["liby.so", "libc.so.6"], runpath="/r")
    debian.lib("/r/liby.so")
    debian.lib("/env/liby.so")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/r")  # the host's: must change nothing
    env = {"LD_LIBRARY_PATH": "/env"}
    assert kept(debian, "/usr/bin/p1", env=env) == DEBIAN_BASE | {"/usr/bin/p1", "/r/liby.so"}
    assert kept(debian, "/usr/bin/p2", env=env) == DEBIAN_BASE | {"/usr/bin/p2", "/env/liby.so"}
    monkeypatch.setenv("LD_LIBRARY_PATH", "/env")
    assert kept(debian, "/usr/bin/p2") == DEBIAN_BASE | {"/usr/bin/p2", "/r/liby.so"}


def test_08_breadth_first_and_soname_reuse(debian):
    debian.exe("/usr/bin/app", needed=["liba.so", "libc3.so", "libc.so.6"], runpath="/A:/D")
    debian.lib("/A/liba.so", needed=["libc3.so"], runpath="/X")
    debian.lib("/X/libc3.so")
    debian.lib("/D/libc3.so")
    result = run(debian, "/usr/bin/app")
    assert set(result.files) == DEBIAN_BASE | {"/usr/bin/app", "/A/liba.so", "/D/libc3.so"}
    edges = {(n.requester, n.name): (n.provider, n.how) for n in result.needs}
    assert edges[("/A/liba.so", "libc3.so")] == ("/D/libc3.so", "loaded")


def _intermediate(debian: Tree, liba_tag: str) -> None:
    debian.exe("/opt/r11/exe", needed=["liba.so", "libc.so.6"], rpath="$ORIGIN/a")
    debian.lib("/opt/r11/a/liba.so", needed=["libb.so"], **{liba_tag: "$ORIGIN/b"})
    debian.lib("/opt/r11/a/b/libb.so", needed=["libc3.so"])
    debian.lib("/opt/r11/a/b/libc3.so")


def test_09_intermediate_loaders_rpath(debian):
    _intermediate(debian, "rpath")
    files = kept(debian, "/opt/r11/exe")
    assert files == DEBIAN_BASE | {"/opt/r11/exe", "/opt/r11/a/liba.so", "/opt/r11/a/b/libb.so",
                                   "/opt/r11/a/b/libc3.so"}


def test_09_intermediate_runpath_is_not_a_chain(debian):
    _intermediate(debian, "runpath")
    problems = run(debian, "/opt/r11/exe").problems
    assert len(problems) == 1 and problems[0].startswith(
        "libc3.so needed by /opt/r11/a/b/libb.so (loading /opt/r11/exe): not found "
        "(searched: /opt/r11/a, /etc/ld.so.cache (absent), /lib/x86_64-linux-gnu")


def test_10_origin_is_the_symlink_location(debian):
    debian.exe("/usr/bin/app", needed=["libh.so", "libc.so.6"], runpath="/h")
    debian.lib("/h/libh.so", needed=["libg.so"], runpath="$ORIGIN/../b")
    debian.link("/b/libg.so", "../a/libg.so")
    debian.lib("/a/libg.so", needed=["libf.so"], runpath="$ORIGIN")
    debian.lib("/b/libf.so")
    files = kept(debian, "/usr/bin/app")
    assert files == DEBIAN_BASE | {"/usr/bin/app", "/h/libh.so", "/b/libg.so", "/a/libg.so",
                                   "/b/libf.so"}


def test_11_symlinked_executable_and_alternatives(debian):
    debian.link("/usr/bin/java", "/etc/alternatives/java")
    debian.link("/etc/alternatives/java", "/usr/lib/jvm/x/bin/java")
    debian.exe("/usr/lib/jvm/x/bin/java", needed=["libjli.so", "libc.so.6"],
               runpath="$ORIGIN/../lib")
    debian.lib("/usr/lib/jvm/x/lib/libjli.so")
    files = kept(debian, "/usr/bin/java")
    assert files == DEBIAN_BASE | {"/usr/bin/java", "/etc/alternatives/java",
                                   "/usr/lib/jvm/x/bin/java", "/usr/lib/jvm/x/lib/libjli.so"}


def test_12_dotdot_after_a_symlinked_directory_is_physical(debian):
    debian.link("/opt/app/lib", "../../srv/real/lib")
    debian.exe("/opt/app/bin/app", needed=["libx.so", "libc.so.6"], runpath="/opt/app/lib")
    debian.lib("/srv/real/lib/libx.so", needed=["libdep.so"], rpath="$ORIGIN/../deps")
    debian.lib("/srv/real/deps/libdep.so")
    debian.lib("/opt/app/deps/libdep.so")  # the decoy a lexical resolver keeps
    result = run(debian, "/opt/app/bin/app")
    assert set(result.files) == DEBIAN_BASE | {
        "/opt/app/bin/app", "/opt/app/lib", "/srv/real/lib/libx.so", "/srv/real/deps/libdep.so"}
    providers = {n.name: n.provider for n in result.needs}
    assert providers["libdep.so"] == "/srv/real/deps/libdep.so"


def _wrong_class_first(tree: Tree) -> None:
    tree.lib("/l32/libf.so", elfclass=32, machine=EM_386)
    tree.lib("/arm/libf.so", machine=EM_AARCH64)
    tree.lib("/l64/libf.so")


def test_13_wrong_class_and_machine_are_skipped_by_glibc(debian):
    _wrong_class_first(debian)
    debian.exe("/usr/bin/app", needed=["libf.so", "libc.so.6"], runpath="/l32:/arm:/l64")
    assert kept(debian, "/usr/bin/app") == DEBIAN_BASE | {"/usr/bin/app", "/l64/libf.so"}


def test_13_musl_takes_the_first_file_and_fails(tree):
    tree.musl()
    _wrong_class_first(tree)
    tree.exe("/usr/bin/app", interp="/lib/ld-musl-x86_64.so.1",
             needed=["libf.so", "libc.musl-x86_64.so.1"], runpath="/l32:/arm:/l64")
    problems = run(tree, "/usr/bin/app").problems
    assert problems == ("libf.so needed by /usr/bin/app: /l32/libf.so: wrong ELF class (musl "
                        "does not skip it) (the loader stops at this file)",)


@pytest.mark.parametrize("shadow, fatal", [
    ("text", "invalid ELF header"),
    ("empty", "file too short"),
    ("directory", "Is a directory"),
    ("dangling", None),
])
def test_14_fatal_candidates(debian, shadow, fatal):
    debian.exe("/usr/bin/app", needed=["libf.so.1", "libc.so.6"], runpath="/r1:/r2")
    debian.lib("/r2/libf.so.1")
    if shadow == "text":
        debian.text("/r1/libf.so.1", "this is not ELF\n")
    elif shadow == "empty":
        debian.text("/r1/libf.so.1", "")
    elif shadow == "directory":
        debian.mkdir("/r1/libf.so.1")
    else:
        debian.link("/r1/libf.so.1", "nowhere.so")
    result = run(debian, "/usr/bin/app")
    if fatal is None:
        assert result.problems == ()
        assert set(result.files) == DEBIAN_BASE | {"/usr/bin/app", "/r2/libf.so.1"}
    else:
        assert len(result.problems) == 1
        assert result.problems[0].startswith("libf.so.1 needed by /usr/bin/app: /r1/libf.so.1: ")
        assert fatal in result.problems[0]
        assert "/r2/libf.so.1" not in result.files


def _hwcaps(debian: Tree) -> None:
    debian.exe("/usr/bin/app", needed=["libf.so.1", "libc.so.6"], runpath="/opt/l")
    debian.lib("/opt/l/libf.so.1")
    debian.lib("/opt/l/glibc-hwcaps/x86-64-v2/libf.so.1")
    debian.lib("/opt/l/glibc-hwcaps/x86-64-v3/libf.so.1", needed=["libextra.so"])
    debian.lib(f"{MULTI}/libextra.so")  # the variant has no RUNPATH of its own


V2, V3 = "/opt/l/glibc-hwcaps/x86-64-v2/libf.so.1", "/opt/l/glibc-hwcaps/x86-64-v3/libf.so.1"


def test_15_hwcaps_any_cpu_keeps_every_variant(debian):
    _hwcaps(debian)
    result = run(debian, "/usr/bin/app")
    assert set(result.files) == DEBIAN_BASE | {"/usr/bin/app", "/opt/l/libf.so.1", V2, V3,
                                               f"{MULTI}/libextra.so"}
    hows = {n.provider: n.how for n in result.needs if n.name == "libf.so.1"}
    assert hows == {V3: "runpath+variant", V2: "runpath+variant", "/opt/l/libf.so.1": "runpath"}


@pytest.mark.parametrize("cpu, chosen", [("x86-64-v2", {V2}),
                                         ("x86-64-v3", {V3, f"{MULTI}/libextra.so"}),
                                         ("x86-64-v4", {V3, f"{MULTI}/libextra.so"}),
                                         ("baseline", {"/opt/l/libf.so.1"})])
def test_15_hwcaps_named_cpu_keeps_one_winner(debian, cpu, chosen):
    _hwcaps(debian)
    assert kept(debian, "/usr/bin/app", cpu=cpu) == DEBIAN_BASE | {"/usr/bin/app"} | chosen


def test_15_hwcaps_variant_alone_then_base_later(debian):
    debian.exe("/usr/bin/app", needed=["libf.so.1", "libc.so.6"], runpath="/opt/l1:/opt/l2")
    debian.lib("/opt/l1/glibc-hwcaps/x86-64-v3/libf.so.1")
    debian.lib("/opt/l2/libf.so.1")
    assert kept(debian, "/usr/bin/app") == DEBIAN_BASE | {
        "/usr/bin/app", "/opt/l1/glibc-hwcaps/x86-64-v3/libf.so.1", "/opt/l2/libf.so.1"}


def test_16_trusted_dir_through_the_cache_built_by_ldconfig(debian):
    debian.lib("/usr/lib/libfoo.so.1", needed=["libc.so.6"])
    debian.exe("/usr/bin/app", needed=["libfoo.so.1", "libc.so.6"])
    debian.ldconfig()
    result = run(debian, "/usr/bin/app")
    assert result.problems == ()
    assert set(result.files) == DEBIAN_BASE | {"/usr/bin/app", "/usr/lib/libfoo.so.1",
                                               "/etc/ld.so.cache"}
    edges = {n.name: (n.provider, n.how) for n in result.needs}
    assert edges["libfoo.so.1"] == ("/lib/libfoo.so.1", "cache")


def test_16_conf_directory_without_cache(debian):
    debian.text("/etc/ld.so.conf", "/opt/x\n")
    debian.lib("/opt/x/libx.so.1")
    debian.exe("/usr/bin/app", needed=["libx.so.1", "libc.so.6"])
    problems = run(debian, "/usr/bin/app").problems
    assert len(problems) == 1
    assert "/opt/x/libx.so.1 exists in a directory listed in ld.so.conf" in problems[0]
    conf = DEBIAN_BASE | {"/usr/bin/app", "/opt/x/libx.so.1", "/etc/ld.so.conf"}
    assert kept(debian, "/usr/bin/app", cache_mode="conf") == conf
    assert kept(debian, "/usr/bin/app", cache_mode="both") == conf
    result = run(debian, "/usr/bin/app", cache_mode="conf")
    assert ("libx.so.1", "conf") in [(n.name, n.how) for n in result.needs]


def test_16_stale_cache_entry_falls_back_to_system_dirs(debian):
    debian.text("/etc/ld.so.cache", cache_bytes([("libz.so.1", "/opt/gone/libz.so.1", X8664, 0)]))
    debian.lib(f"{MULTI}/libz.so.1")
    debian.exe("/usr/bin/app", needed=["libz.so.1", "libc.so.6"])
    result = run(debian, "/usr/bin/app")
    assert result.problems == ()
    assert set(result.files) == DEBIAN_BASE | {"/usr/bin/app", f"{MULTI}/libz.so.1",
                                               "/etc/ld.so.cache"}
    assert any("stale ld.so.cache entry: libz.so.1 -> /opt/gone/libz.so.1" in w
               for w in result.warnings)


# case 17 (ld.so.conf grammar) is in test_parsers.py


def test_18_dynamic_string_tokens_debian(debian):
    debian.exe("/usr/bin/app", needed=["libq.so", "libr.so", "libs.so", "libc.so.6"],
               runpath="/opt/$LIB/x:/opt/${PLATFORM}/y:/opt/$FOO/z")
    debian.lib("/opt/lib/x86_64-linux-gnu/x/libq.so")
    debian.lib("/opt/haswell/y/libr.so")
    debian.lib("/opt/x86_64/y/libr.so")
    debian.lib("/opt/$FOO/z/libs.so")
    result = run(debian, "/usr/bin/app")
    assert result.problems == ()
    assert set(result.files) == DEBIAN_BASE | {
        "/usr/bin/app", "/opt/lib/x86_64-linux-gnu/x/libq.so", "/opt/haswell/y/libr.so",
        "/opt/x86_64/y/libr.so", "/opt/$FOO/z/libs.so"}


def test_18_lib_token_on_a_fedora_root(tree):
    tree.fedora()
    tree.exe("/usr/bin/app", needed=["libq.so", "libc.so.6"], runpath="/opt/$LIB/x")
    tree.lib("/opt/lib64/x/libq.so")
    tree.lib("/opt/lib/x86_64-linux-gnu/x/libq.so")  # the Debian spelling: a decoy here
    assert kept(tree, "/usr/bin/app") == {"/usr/bin/app", "/lib64/ld-linux-x86-64.so.2",
                                          "/lib64/libc.so.6", "/opt/lib64/x/libq.so"}


def test_19_slash_in_needed(debian):
    debian.exe("/opt/s/bin/app", needed=["$ORIGIN/sub/libo.so", "/opt/abs/libz.so", "libc.so.6"])
    debian.lib("/opt/s/bin/sub/libo.so")
    debian.lib("/opt/abs/libz.so")
    assert kept(debian, "/opt/s/bin/app", workdir="/tmp") == DEBIAN_BASE | {
        "/opt/s/bin/app", "/opt/s/bin/sub/libo.so", "/opt/abs/libz.so"}


def test_19_relative_needed_uses_the_working_directory(debian):
    debian.exe("/opt/s/bin/app", needed=["sub/libo.so", "libc.so.6"])
    debian.lib("/opt/s/bin/sub/libo.so")
    result = run(debian, "/opt/s/bin/app", workdir="/opt/s/bin")
    assert result.problems == ()
    assert "/opt/s/bin/sub/libo.so" in result.files
    assert any("sub/libo.so needed by /opt/s/bin/app is relative" in w for w in result.warnings)
    assert run(debian, "/opt/s/bin/app").problems  # from "/" it is not there


def test_20_interpreter_reuse(debian):
    debian.lib("/opt/rt/ld.so", soname="ld-linux-x86-64.so.2", osabi=3,
               rodata=loader_rodata(("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                     "/lib", "/usr/lib"), "lib/x86_64-linux-gnu"))
    debian.exe("/usr/bin/app", interp="/opt/rt/ld.so", needed=["libc.so.6"])
    files = kept(debian, "/usr/bin/app")
    assert files == {"/usr/bin/app", "/opt/rt/ld.so", "/lib", f"{MULTI}/libc.so.6"}


def test_21_nodeflib(debian):
    debian.text("/etc/ld.so.cache", cache_bytes([
        ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", X8664, 0),
        ("libu.so.1", "/usr/local/lib/libu.so.1", X8664, 0)]))
    debian.exe("/usr/bin/app", needed=["libc.so.6"], runpath="/opt/l", flags_1=DF_1_NODEFLIB)
    problems = run(debian, "/usr/bin/app").problems
    assert problems == ("libc.so.6 needed by /usr/bin/app: not found (searched: /opt/l, "
                        "ld.so.cache, (system directories skipped: NODEFLIB))",)


def test_21_nodeflib_still_uses_cache_entries_outside_system_dirs(debian):
    debian.text("/etc/ld.so.cache", cache_bytes([
        ("libu.so.1", "/usr/local/lib/libu.so.1", X8664, 0)]))
    debian.lib("/usr/local/lib/libu.so.1", needed=["libc.so.6"])
    debian.exe("/usr/bin/app", needed=["libu.so.1"], flags_1=DF_1_NODEFLIB)
    assert kept(debian, "/usr/bin/app") == DEBIAN_BASE | {
        "/usr/bin/app", "/usr/local/lib/libu.so.1", "/etc/ld.so.cache"}


def test_22_static_and_static_pie(debian):
    debian.elf("/usr/bin/static", e_type=ET_EXEC, dynamic=False)
    debian.elf("/usr/bin/spie", e_type=ET_DYN, flags_1=DF_1_PIE)
    result = run(debian, "/usr/bin/static", "/usr/bin/spie")
    assert (result.problems, result.warnings) == ((), ())
    assert set(result.files) == {"/usr/bin/static", "/usr/bin/spie"}


def test_22_static_glibc_using_nss_is_flagged(debian):
    debian.elf("/usr/bin/static", e_type=ET_EXEC, dynamic=False,
               rodata=b"/etc/nsswitch.conf\0libnss_%s.so.2\0")
    result = run(debian, "/usr/bin/static")
    assert set(result.files) == {"/usr/bin/static"}
    assert result.warnings == ("/usr/bin/static: static glibc program using NSS: at run time "
                               "it dlopens libnss_* of the same glibc version, which is not "
                               "followed",)


@pytest.fixture
def scripts_root(debian):
    debian.link("/bin", "usr/bin")
    debian.exe("/usr/bin/dash", needed=["libc.so.6"])
    debian.link("/usr/bin/sh", "dash")
    debian.exe("/usr/bin/bash", needed=["libc.so.6"])
    debian.exe("/usr/bin/env", needed=["libc.so.6"])
    debian.exe("/usr/bin/python3.11", needed=["libc.so.6"])
    debian.link("/usr/bin/python3", "python3.11")
    debian.exe("/usr/local/bin/python3", needed=["libc.so.6"])  # not on the target PATH
    return debian


def test_23_shebang_with_argument_through_links(scripts_root):
    scripts_root.text("/usr/bin/s1", "#!/bin/sh -e\necho hi\n", 0o755)
    assert kept(scripts_root, "/usr/bin/s1") == DEBIAN_BASE | {
        "/usr/bin/s1", "/bin", "/usr/bin/sh", "/usr/bin/dash"}


def test_23_env_through_the_target_path(scripts_root):
    scripts_root.text("/usr/bin/s2", "#!/usr/bin/env python3\n", 0o755)
    result = run(scripts_root, "/usr/bin/s2", env={"PATH": "/usr/bin:/bin"})
    assert result.problems == ()
    assert set(result.files) == DEBIAN_BASE | {
        "/usr/bin/s2", "/usr/bin/env", "/usr/bin/python3", "/usr/bin/python3.11"}
    assert ("/usr/bin/s2", "python3", "/usr/bin/python3", "env") in [
        (n.requester, n.name, n.provider, n.how) for n in result.needs]
    default_path = run(scripts_root, "/usr/bin/s2")  # /usr/local/bin comes first by default
    assert "/usr/local/bin/python3" in default_path.files


def test_23_blank_after_hash_bang(scripts_root):
    scripts_root.text("/usr/bin/s3", "#! /bin/bash\n", 0o755)
    assert kept(scripts_root, "/usr/bin/s3") == DEBIAN_BASE | {
        "/usr/bin/s3", "/bin", "/usr/bin/bash"}


def test_23_carriage_return_is_part_of_the_interpreter(scripts_root):
    scripts_root.text("/usr/bin/s4", "#!/bin/sh\r\n", 0o755)
    problems = run(scripts_root, "/usr/bin/s4").problems
    assert problems == ("/usr/bin/s4: interpreter '/bin/sh\\r' not found "
                        "(missing: /usr/bin/sh\r)",)


def test_23_interpreter_that_is_a_script(scripts_root):
    scripts_root.text("/usr/local/bin/wrapper", "#!/bin/sh\nexec \"$@\"\n", 0o755)
    scripts_root.text("/usr/bin/s5", "#!/usr/local/bin/wrapper\n", 0o755)
    assert kept(scripts_root, "/usr/bin/s5") == DEBIAN_BASE | {
        "/usr/bin/s5", "/usr/local/bin/wrapper", "/bin", "/usr/bin/sh", "/usr/bin/dash"}


NSSWITCH = "passwd: files systemd\nhosts: files mymachines dns myhostname\n"


def _nss_modules(tree: Tree, libdir: str) -> None:
    tree.text("/etc/nsswitch.conf", NSSWITCH)
    tree.lib(f"{libdir}/libnss_systemd.so.2", needed=["libcap.so.2"])
    tree.lib(f"{libdir}/libcap.so.2")
    for name in ("mymachines", "files", "dns", "compat"):
        tree.lib(f"{libdir}/libnss_{name}.so.2")


def test_24_nss_modules_from_nsswitch_conf(debian):
    _nss_modules(debian, MULTI)
    debian.exe("/usr/bin/app", needed=["libc.so.6"])
    result = run(debian, "/usr/bin/app", rules=("nss",))
    assert result.problems == ()
    modules = {f"{MULTI}/libnss_{n}.so.2" for n in ("systemd", "mymachines", "files", "dns")}
    assert set(result.files) == DEBIAN_BASE | modules | {
        "/usr/bin/app", f"{MULTI}/libcap.so.2", "/etc/nsswitch.conf"}
    assert f"{MULTI}/libnss_compat.so.2" not in result.files
    assert result.warnings == ("NSS service 'myhostname' in /etc/nsswitch.conf: "
                               "libnss_myhostname.so.2 not found (glibc skips the service at "
                               "run time)",)


def test_24_no_nss_rule_on_musl(tree):
    tree.musl()
    _nss_modules(tree, "/usr/lib")
    tree.exe("/usr/bin/app", interp="/lib/ld-musl-x86_64.so.1", needed=["libc.musl-x86_64.so.1"])
    assert kept(tree, "/usr/bin/app", rules=("nss", "libgcc_s")) == {
        "/usr/bin/app", "/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"}


def test_25_libgcc_s(debian):
    debian.lib(f"{MULTI}/libgcc_s.so.1", needed=["libc.so.6"])
    debian.exe("/usr/bin/app", needed=["libc.so.6"])
    result = run(debian, "/usr/bin/app", rules=("libgcc_s",))
    assert set(result.files) == DEBIAN_BASE | {"/usr/bin/app", f"{MULTI}/libgcc_s.so.1"}
    assert ("/lib/x86_64-linux-gnu/libc.so.6", "libgcc_s.so.1", "libgcc_s") in [
        (n.requester, n.name, n.how) for n in result.needs]
    assert f"{MULTI}/libgcc_s.so.1" not in kept(debian, "/usr/bin/app")  # rules off


def test_25_no_libgcc_s_on_musl(tree):
    tree.musl()
    tree.lib("/usr/lib/libgcc_s.so.1")
    tree.exe("/usr/bin/app", interp="/lib/ld-musl-x86_64.so.1", needed=["libc.musl-x86_64.so.1"])
    assert "/usr/lib/libgcc_s.so.1" not in kept(tree, "/usr/bin/app", rules=("libgcc_s",))


def test_26_gconv_when_iconv_open_is_imported(debian):
    gconv = f"{MULTI}/gconv"
    debian.text(f"{gconv}/gconv-modules", "module EUC-JP// INTERNAL EUC-JP 1\n")
    debian.text(f"{gconv}/gconv-modules.d/gconv-modules-extra.conf", "# extra\n")
    debian.lib(f"{gconv}/EUC-JP.so", needed=["libJIS.so", "libc.so.6"], runpath="$ORIGIN")
    debian.lib(f"{gconv}/libJIS.so", needed=["libc.so.6"])
    debian.lib(f"{gconv}/UTF-16.so", needed=["libc.so.6"])
    debian.exe("/usr/bin/iconv", needed=["libc.so.6"], imports=["iconv_open"])
    debian.exe("/usr/bin/true", needed=["libc.so.6"])
    result = run(debian, "/usr/bin/iconv", rules=("gconv",))
    assert result.problems == ()
    assert set(result.files) == DEBIAN_BASE | {
        "/usr/bin/iconv", f"{gconv}/gconv-modules", f"{gconv}/EUC-JP.so", f"{gconv}/libJIS.so",
        f"{gconv}/UTF-16.so", f"{gconv}/gconv-modules.d/gconv-modules-extra.conf"}
    assert kept(debian, "/usr/bin/true", rules=("gconv",)) == DEBIAN_BASE | {"/usr/bin/true"}


@pytest.mark.parametrize("present, problem", [
    ({"libaux.so", "libflt.so"}, False), ({"libflt.so"}, False), ({"libaux.so"}, True)])
def test_27_filters(debian, present, problem):
    debian.exe("/usr/bin/app", needed=["liba.so", "libc.so.6"], runpath="/f")
    debian.lib("/f/liba.so", auxiliary=["libaux.so"], filters=["libflt.so"], runpath="$ORIGIN")
    for name in present:
        debian.lib(f"/f/{name}")
    result = run(debian, "/usr/bin/app")
    expected = DEBIAN_BASE | {"/usr/bin/app", "/f/liba.so"} | {f"/f/{n}" for n in present}
    assert set(result.files) == expected
    if problem:
        assert result.problems[0].startswith("libflt.so needed by /f/liba.so")
    else:
        assert result.problems == ()


def _musl_app(tree: Tree, path_file: str) -> None:
    tree.musl(path_file)
    tree.exe("/usr/bin/app", interp="/lib/ld-musl-x86_64.so.1",
             needed=["libc.musl-x86_64.so.1", "libpthread.so.0", "libb.so"],
             runpath="$ORIGIN/../lib/app")
    tree.lib("/usr/lib/app/libb.so", needed=["libc3.so"])
    tree.lib("/usr/lib/app/libc3.so")


def test_28_musl_root(tree):
    _musl_app(tree, "/usr/local/lib\n/usr/lib\n")
    result = run(tree, "/usr/bin/app")
    assert result.problems == ()
    assert set(result.files) == {
        "/usr/bin/app", "/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1",
        "/usr/lib/app/libb.so", "/usr/lib/app/libc3.so", "/etc/ld-musl-x86_64.path"}
    hows = {n.name: (n.provider, n.how) for n in result.needs}
    assert hows["libpthread.so.0"] == ("/lib/ld-musl-x86_64.so.1", "musl-libc")
    assert hows["libc3.so"] == ("/usr/lib/app/libc3.so", "runpath")


def test_28_musl_empty_path_file_means_no_system_path(tree):
    _musl_app(tree, "")
    tree.lib("/usr/lib/libq.so")
    tree.exe("/usr/bin/q", interp="/lib/ld-musl-x86_64.so.1", needed=["libq.so"])
    assert run(tree, "/usr/bin/q").problems == (
        "libq.so needed by /usr/bin/q: not found (searched: nowhere)",)
    (tree.root / "etc/ld-musl-x86_64.path").unlink()  # no file: musl's built-in default
    assert "/usr/lib/libq.so" in kept(tree, "/usr/bin/q")


def test_29_multiarch_i386_in_an_amd64_root(debian):
    debian.i386()
    debian.lib("/usr/lib/i386-linux-gnu/libz.so.1", elfclass=32, machine=EM_386)
    debian.lib(f"{MULTI}/libz.so.1")
    debian.text("/etc/ld.so.cache", cache_bytes([
        ("libz.so.1", "/lib/i386-linux-gnu/libz.so.1", 3, 0),
        ("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", X8664, 0),
        ("libc.so.6", "/lib/i386-linux-gnu/libc.so.6", 3, 0),
        ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", X8664, 0)]))
    debian.exe("/usr/bin/app32", elfclass=32, machine=EM_386, interp="/lib/ld-linux.so.2",
               needed=["libz.so.1", "libc.so.6"])
    debian.exe("/usr/bin/app64", needed=["libz.so.1", "libc.so.6"])
    i386 = {"/usr/bin/app32", "/lib", "/usr/lib/ld-linux.so.2",
            "/usr/lib/i386-linux-gnu/ld-linux.so.2", "/usr/lib/i386-linux-gnu/libc.so.6",
            "/usr/lib/i386-linux-gnu/libz.so.1", "/etc/ld.so.cache"}
    assert kept(debian, "/usr/bin/app32") == i386
    assert kept(debian, "/usr/bin/app64") == DEBIAN_BASE | {
        "/usr/bin/app64", f"{MULTI}/libz.so.1", "/etc/ld.so.cache"}
    (debian.root / "etc/ld.so.cache").unlink()  # the i386 loader's own system dirs
    assert kept(debian, "/usr/bin/app32") == i386 - {"/etc/ld.so.cache"}


def test_30_two_programs_conflicting_views(debian):
    debian.exe("/usr/bin/a", needed=["libz.so.1", "libc.so.6"], runpath="/opt/a")
    debian.exe("/usr/bin/b", needed=["libz.so.1", "libc.so.6"])
    debian.lib("/opt/a/libz.so.1")
    debian.lib(f"{MULTI}/libz.so.1")
    assert kept(debian, "/usr/bin/a", "/usr/bin/b") == DEBIAN_BASE | {
        "/usr/bin/a", "/usr/bin/b", "/opt/a/libz.so.1", f"{MULTI}/libz.so.1"}


def test_31_preload(debian):
    debian.text("/etc/ld.so.preload", "/usr/lib/libhook.so\n")
    debian.lib("/usr/lib/libhook.so", needed=["libdl.so.2"])
    debian.lib(f"{MULTI}/libdl.so.2", needed=["libc.so.6"])
    debian.lib("/usr/lib/libenvhook.so")
    debian.exe("/usr/bin/app", needed=["libc.so.6"])
    result = run(debian, "/usr/bin/app", env={"LD_PRELOAD": "libenvhook.so"})
    assert result.problems == ()
    assert set(result.files) == DEBIAN_BASE | {
        "/usr/bin/app", "/etc/ld.so.preload", "/usr/lib/libhook.so", f"{MULTI}/libdl.so.2",
        "/usr/lib/libenvhook.so"}
    hows = {n.name: n.how for n in result.needs}
    assert hows["/usr/lib/libhook.so"] == hows["libenvhook.so"] == "preload"


def test_32_missing_symbol_version(tmp_path):
    image = Tree(tmp_path / "image")
    image.debian(libc_versions=["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.31"])
    image.exe("/usr/bin/hostprog", needed=["libc.so.6"],
              verneed={"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.34"]})
    result = run(image, "/usr/bin/hostprog")
    expected = ("missing symbol version GLIBC_2.34: /usr/bin/hostprog needs it from libc.so.6, "
                "but /lib/x86_64-linux-gnu/libc.so.6 does not define it (newest there: "
                "GLIBC_2.31)")
    assert result.problems == (expected,)
    assert check_versions(str(image.root), result) == (expected,)


def test_32_versions_met_and_libraries_without_version_info(debian):
    debian.lib(f"{MULTI}/libplain.so.1")
    debian.exe("/usr/bin/app", needed=["libplain.so.1", "libc.so.6"],
               verneed={"libc.so.6": ["GLIBC_2.17"], "libplain.so.1": ["PLAIN_1"]})
    result = run(debian, "/usr/bin/app")
    assert result.problems == ()
    assert any("has no version information" in w for w in result.warnings)


@pytest.mark.parametrize("entry", ["loop", "notdir"])
def test_33_a_broken_entry_in_an_existing_runpath_directory_ends_that_list(debian, entry):
    """glibc's open_path: the directory exists, but opening libfoo.so in it fails
    with ELOOP or ENOTDIR: the rest of the RUNPATH is abandoned, the system
    directories answer (checked against glibc 2.36's loader)."""
    debian.exe("/usr/bin/app", needed=["libfoo.so", "libc.so.6"], runpath="/bad:/good")
    debian.lib("/good/libfoo.so")
    debian.lib(f"{MULTI}/libfoo.so")
    debian.text("/afile", "")
    debian.link("/bad/libfoo.so", "libfoo.so" if entry == "loop" else "../afile/x")
    files = kept(debian, "/usr/bin/app")
    assert f"{MULTI}/libfoo.so" in files and "/good/libfoo.so" not in files


@pytest.mark.parametrize("bad", ["loop", "afile"])
def test_33_a_directory_that_is_no_directory_is_only_skipped(debian, bad):
    """The directory itself a loop or a file: glibc marks it nonexisting and
    goes on in the same list."""
    debian.exe("/usr/bin/app", needed=["libfoo.so", "libc.so.6"], runpath=f"/{bad}:/good")
    debian.lib("/good/libfoo.so")
    debian.lib(f"{MULTI}/libfoo.so")
    debian.text("/afile", "")
    debian.link("/loop", "loop")
    assert "/good/libfoo.so" in kept(debian, "/usr/bin/app")


@pytest.mark.parametrize("where", ["entry", "directory"])
def test_34_musl_gives_up_at_a_symlink_loop(tree, where):
    """musl's path_open: any error but ENOENT, ENOTDIR, EACCES or ENAMETOOLONG
    stops the whole search, the directory itself a loop too."""
    tree.musl()
    tree.exe("/usr/bin/app", interp="/lib/ld-musl-x86_64.so.1",
             needed=["libfoo.so", "libc.musl-x86_64.so.1"], runpath="/bad:/good")
    tree.lib("/good/libfoo.so")
    tree.lib("/usr/lib/libfoo.so")
    tree.link("/bad/libfoo.so" if where == "entry" else "/bad", "libfoo.so"
              if where == "entry" else "bad")
    assert run(tree, "/usr/bin/app").problems == (
        "libfoo.so needed by /usr/bin/app: /bad/libfoo.so: symbolic link loop (musl stops "
        "searching) (the loader stops at this file)",)


@pytest.mark.parametrize("how", ["link", "soname", "banner"])
def test_35_a_musl_loader_under_another_name_is_musl(tree, how):
    """PT_INTERP /lib/ld.so: a link to ld-musl-x86_64.so.1, Alpine's loader
    copied (its SONAME), or upstream musl's (no SONAME, its banner)."""
    tree.musl()
    if how == "link":
        tree.link("/lib/ld.so", "ld-musl-x86_64.so.1")
    else:
        tree.lib("/lib/ld.so", soname="libc.musl-x86_64.so.1" if how == "soname" else None,
                 rodata=b"musl libc (x86_64)\nVersion %s\nDynamic Program Loader\n"
                 if how == "banner" else b"")
    tree.exe("/usr/bin/app", interp="/lib/ld.so", needed=["libpthread.so.0"])
    result = run(tree, "/usr/bin/app")
    assert result.problems == ()
    assert {n.name: n.how for n in result.needs}["libpthread.so.0"] == "musl-libc"
