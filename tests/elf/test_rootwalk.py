"""rootwalk: paths resolved inside a root as the kernel would after chroot(ROOT)."""

from __future__ import annotations

import os

import pytest

from acigen.helpers.rootfs import walk as rootwalk
from acigen.helpers.rootfs.walk import Walk, Walker
from tests.elf.conftest import confined


@pytest.fixture
def root(tree):
    tree.link("/lib", "usr/lib")
    tree.link("/lib64", "/usr/lib64")  # absolute: must restart at the root, not the host
    tree.link("/usr/lib64/ld.so", "/lib/x86_64-linux-gnu/ld.so")
    tree.text("/usr/lib/x86_64-linux-gnu/ld.so", "x")
    return tree


def test_absolute_links_restart_at_the_root_and_every_link_is_reported(root, monkeypatch):
    with confined(monkeypatch, root.root):
        walk = Walker(str(root.root)).resolve("/lib64/ld.so")
    assert walk == Walk("/usr/lib/x86_64-linux-gnu/ld.so",
                        ("/lib64", "/usr/lib64/ld.so", "/lib"), "file")


def test_dotdot_at_the_root_stays_there(root):
    assert Walker(str(root.root)).resolve("/../../../lib/x86_64-linux-gnu/ld.so").path == \
        "/usr/lib/x86_64-linux-gnu/ld.so"


def test_dotdot_after_a_directory_link_is_physical(tree):
    tree.link("/opt/app/lib", "../../srv/real/lib")
    tree.mkdir("/srv/real/lib")
    tree.text("/srv/real/deps/libdep.so", "real")
    tree.text("/opt/app/deps/libdep.so", "decoy")
    walk = Walker(str(tree.root)).resolve("/opt/app/lib/../deps/libdep.so")
    assert walk == Walk("/srv/real/deps/libdep.so", ("/opt/app/lib",), "file")


def test_link_escaping_upwards_is_clamped(tree):
    tree.link("/a/up", "../../../../../etc")
    tree.text("/etc/passwd", "root")
    assert Walker(str(tree.root)).resolve("/a/up/passwd").path == "/etc/passwd"


@pytest.mark.parametrize("setup, path, status", [
    (lambda t: None, "/nope", "missing"),
    (lambda t: t.link("/d", "target-gone"), "/d", "dangling"),
    (lambda t: (t.link("/a", "b"), t.link("/b", "a")), "/a", "loop"),
    (lambda t: t.text("/f", "x"), "/f/x", "notdir"),
    (lambda t: t.text("/f", "x"), "/f/..", "notdir"),
    (lambda t: t.text("/f", "x"), "/f/", "notdir"),
    (lambda t: t.mkdir("/d"), "/d", "dir"),
    (lambda t: t.mkdir("/d"), "/", "dir"),
    (lambda t: os.mkfifo(t.host("/fifo")), "/fifo", "other"),
])
def test_statuses(tree, setup, path, status):
    setup(tree)
    assert Walker(str(tree.root)).resolve(path).status == status


def test_forty_links_resolve_and_forty_one_loop(tree):
    tree.text("/end", "x")
    for index in range(41):
        tree.link(f"/l{index}", "end" if index == 0 else f"l{index - 1}")
    walker = Walker(str(tree.root))
    assert walker.resolve("/l39").status == "file"
    assert walker.resolve("/l40").status == "loop"


def test_relative_paths_use_the_cwd(root):
    walker = Walker(str(root.root))
    assert walker.resolve("x86_64-linux-gnu/ld.so", cwd="/lib").path == \
        "/usr/lib/x86_64-linux-gnu/ld.so"


def test_memoised_until_forgotten(tree):
    tree.text("/f", "x")
    assert rootwalk.resolve(str(tree.root), "/f").status == "file"
    os.unlink(tree.host("/f"))
    assert rootwalk.resolve(str(tree.root), "/f").status == "file"  # memoised
    rootwalk.forget(str(tree.root))
    assert rootwalk.resolve(str(tree.root), "/f").status == "missing"


def test_glob_inside_the_root(tree):
    tree.link("/etc/conf.d", "/real.d")
    for name in ("b.conf", "a.conf", ".hidden.conf", "c.txt"):
        tree.text(f"/real.d/{name}", "")
    walker = Walker(str(tree.root))
    assert walker.glob("/etc/conf.d/*.conf") == ["/etc/conf.d/a.conf", "/etc/conf.d/b.conf"]
    assert walker.glob("conf.d/.*.conf", cwd="/etc") == ["/etc/conf.d/.hidden.conf"]
    assert walker.glob("/etc/none.d/*.conf") == []
    assert walker.listdir("/etc/conf.d") == (".hidden.conf", "a.conf", "b.conf", "c.txt")


def test_host_root(tmp_path):
    (tmp_path / "f").write_text("x")
    walk = Walker("/").resolve(str(tmp_path / "f"))
    assert (walk.status, walk.path) == ("file", str(tmp_path / "f"))
