"""Behaviours beyond the §10 list: secure mode, shared-object entries, the host as root,
a foreign-architecture root, odd entries, and the API details callers rely on."""

from __future__ import annotations

import os

import pytest

from acigen.helpers.elf import DATA_HOWS, closure
from tests.elf.conftest import DEBIAN_BASE, kept, run
from tests.elf.elfwriter import EM_AARCH64
from tests.elf.fixtures import Tree, loader_rodata

MULTI = "/usr/lib/x86_64-linux-gnu"


def test_setuid_programs_ignore_the_environment(debian):
    debian.exe("/usr/bin/su", needed=["liby.so", "libc.so.6"])
    os.chmod(debian.host("/usr/bin/su"), 0o4755)
    debian.lib("/env/liby.so")
    debian.lib("/env/libhook.so")
    debian.lib(f"{MULTI}/liby.so")
    env = {"LD_LIBRARY_PATH": "/env", "LD_PRELOAD": "/env/libhook.so"}
    assert kept(debian, "/usr/bin/su", env=env) == DEBIAN_BASE | {"/usr/bin/su",
                                                                 f"{MULTI}/liby.so"}


def test_secure_mode_origin_only_into_trusted_directories(debian):
    debian.exe("/opt/bin/su", needed=["libz.so", "libc.so.6"], runpath="$ORIGIN/../lib")
    os.chmod(debian.host("/opt/bin/su"), 0o4755)
    debian.lib("/opt/lib/libz.so")
    assert run(debian, "/opt/bin/su").problems[0].startswith(
        "libz.so needed by /opt/bin/su: not found")


def test_shared_object_entry_uses_the_roots_loader(debian):
    # a Python extension module, say: no PT_INTERP; $ORIGIN is where it was opened
    debian.link("/usr/lib/python3/ext.so", "/opt/real/ext.so")
    debian.lib("/opt/real/ext.so", needed=["libhelper.so", "libc.so.6"], runpath="$ORIGIN/libs")
    debian.lib("/usr/lib/python3/libs/libhelper.so")
    debian.lib("/opt/real/libs/libhelper.so")  # decoy: the link's directory counts
    files = kept(debian, "/usr/lib/python3/ext.so")
    assert files == DEBIAN_BASE | {"/usr/lib/python3/ext.so", "/opt/real/ext.so",
                                   "/usr/lib/python3/libs/libhelper.so"}


def test_library_that_needs_nothing_is_just_kept(debian):
    debian.lib(f"{MULTI}/libplain.so.1")
    result = run(debian, f"{MULTI}/libplain.so.1")
    assert (set(result.files), result.problems) == ({f"{MULTI}/libplain.so.1"}, ())


def test_the_host_as_root():
    result = closure("/", ["/usr/bin/true"], rules=())
    assert result.problems == ()
    libc = os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6")
    assert libc in result.files
    assert "/usr/bin/true" in result.files


def test_foreign_architecture_root(tree):
    """An aarch64 root read on an x86-64 host: the root's loader and cache decide."""
    dirs = ("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib")
    tree.link("/lib", "usr/lib")
    tree.lib("/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", machine=EM_AARCH64,
             rodata=loader_rodata(dirs, "lib/aarch64-linux-gnu"))
    tree.link("/usr/lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu/ld-linux-aarch64.so.1")
    tree.lib("/usr/lib/aarch64-linux-gnu/libc.so.6", machine=EM_AARCH64,
             needed=["ld-linux-aarch64.so.1"])
    tree.lib("/usr/lib/x86_64-linux-gnu/libc.so.6")  # wrong machine, and not searched
    tree.exe("/usr/bin/app", machine=EM_AARCH64, interp="/lib/ld-linux-aarch64.so.1",
             needed=["libc.so.6"])
    assert kept(tree, "/usr/bin/app") == {
        "/usr/bin/app", "/lib", "/usr/lib/ld-linux-aarch64.so.1",
        "/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
        "/usr/lib/aarch64-linux-gnu/libc.so.6"}


def test_missing_interpreter_is_a_problem(debian):
    debian.exe("/usr/bin/app", interp="/lib/ld-linux.so.3", needed=["libc.so.6"])
    result = run(debian, "/usr/bin/app")
    assert result.problems[0] == ("/usr/bin/app: interpreter /lib/ld-linux.so.3 not found "
                                  "(missing: /usr/lib/ld-linux.so.3); the kernel cannot start it")


@pytest.mark.parametrize("make, problem, warning", [
    (lambda t: t.mkdir("/usr/bin"), "/usr/bin/x: not found (missing: /usr/bin/x)", None),
    (lambda t: t.mkdir("/usr/bin/x"), "/usr/bin/x: is a directory, not a program", None),
    (lambda t: t.text("/usr/bin/x", "data"), None,
     "/usr/bin/x: neither an ELF file nor a script; kept as it is"),
    (lambda t: t.text("/usr/bin/x", "\x7fELF\x02"), "/usr/bin/x: file too short", None),
])
def test_odd_entries(tree, make, problem, warning):
    make(tree)
    result = run(tree, "/usr/bin/x")
    assert result.problems == ((problem,) if problem else ())
    assert result.warnings == ((warning,) if warning else ())
    assert "/usr/bin" not in result.files  # never a plain directory


def test_env_not_found_on_the_target_path(debian):
    debian.exe("/usr/bin/env", needed=["libc.so.6"])
    debian.text("/usr/bin/s", "#!/usr/bin/env ruby\n", 0o755)
    assert run(debian, "/usr/bin/s", env={"PATH": "/usr/bin"}).problems == (
        "/usr/bin/s: env cannot find 'ruby' (searched: /usr/bin/ruby)",)


def test_unknown_cpu_level_warns(debian):
    debian.exe("/usr/bin/app", needed=["libc.so.6"])
    assert any("cpu 'power9' is not a glibc-hwcaps level" in w
               for w in run(debian, "/usr/bin/app", cpu="power9").warnings)


def test_bad_options_raise(debian):
    with pytest.raises(ValueError, match="cache_mode"):
        closure(str(debian.root), [], cache_mode="ldconfig")
    with pytest.raises(ValueError, match="unknown rules: pam"):
        closure(str(debian.root), [], rules=("pam",))


def test_every_kept_file_has_a_reason(debian):
    debian.text("/etc/nsswitch.conf", "passwd: files\n")
    debian.text("/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    debian.exe("/usr/bin/app", needed=["libc.so.6"])
    result = closure(str(debian.root), ["/usr/bin/app"])
    data = {n.provider for n in result.needs if n.how in DATA_HOWS}
    assert data == {"/etc/nsswitch.conf", "/etc/passwd"}
    assert set(result.to_json()["files"]) == set(result.files)


def test_tree_pruned_between_calls_is_reread(debian):
    debian.exe("/usr/bin/app", needed=["libz.so.1", "libc.so.6"])
    debian.lib(f"{MULTI}/libz.so.1")
    assert run(debian, "/usr/bin/app").problems == ()
    os.unlink(debian.host(f"{MULTI}/libz.so.1"))
    assert run(debian, "/usr/bin/app").problems  # a fresh walk sees the deletion


def test_fedora_style_root_system_dirs(tmp_path):
    tree = Tree(tmp_path / "root")
    tree.fedora()
    tree.exe("/usr/bin/app", needed=["libz.so.1", "libc.so.6"])
    tree.lib("/usr/lib64/libz.so.1")
    tree.lib("/usr/lib/x86_64-linux-gnu/libz.so.1")  # not a system dir there
    assert kept(tree, "/usr/bin/app") == {"/usr/bin/app", "/lib64/ld-linux-x86-64.so.2",
                                          "/lib64/libc.so.6", "/usr/lib64/libz.so.1"}
