"""Images whose proc, dev, sys, etc or build-time files are symlinks to host
paths: the step refuses with a clear error or stays inside the root, and
the host is unchanged either way."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.chroot.stepkit import Build, sh
from tests.support.rootfs import busybox_tree

pytestmark = pytest.mark.usefixtures("no_mount_leaks")

DEEP = "../" * 12  # far more `..` than the build directory is deep


def host_state(*extra: Path) -> dict[str, object]:
    """What a bad mount or a write through a link would change on the host."""
    state: dict[str, object] = {}
    for top in ("/etc", "/dev", "/proc", "/sys", *map(str, extra)):
        state[top] = sorted(e for e in os.listdir(top) if not e.isdigit())  # not processes
    for name in ("passwd", "group", "hosts", "resolv.conf", "shadow", "hostname"):
        path = Path("/etc") / name
        if path.exists():
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    state["/etc stat"] = os.stat("/etc").st_mtime_ns
    return state


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A host directory that links in the image point at."""
    path = tmp_path / "host-side"
    path.mkdir()
    (path / "keep").write_text("host data\n")
    return path


def hostile_base(build: Build, name: str, target: str) -> Path:
    """A busybox root with NAME replaced by a symlink to TARGET."""
    def fill(tree: Path) -> None:
        busybox_tree(tree)
        victim = tree / name
        if victim.is_dir() and not victim.is_symlink():
            shutil.rmtree(victim)
        elif victim.is_symlink() or victim.exists():
            victim.unlink()
        victim.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, victim)
    return build.base(fill)


@pytest.mark.parametrize(("name", "target"), [
    ("proc", "/etc"), ("proc", DEEP + "etc"),
    ("dev", "/dev"), ("dev", DEEP + "tmp"),
    ("sys", "/sys"), ("sys", DEEP + "etc"),
])
def test_a_symlinked_mount_point_is_refused(build: Build, host_dir: Path, name: str,
                                            target: str) -> None:
    before = host_state(host_dir)
    base = hostile_base(build, name, target)
    step = build.step("01-hostile", sh("echo ran > /ran"), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"acigen-chroot-run: error: /{name} in the image is a symlink (to {target}); "
        f"acigen mounts /{name} only on a real directory")
    assert result.stderr.splitlines()[1].startswith("hint: ")
    assert not step.stamp.exists()
    assert not (step.tree / "ran").exists()
    assert host_state(host_dir) == before


@pytest.mark.parametrize("absolute", [True, False])
def test_a_symlinked_etc_is_refused(build: Build, host_dir: Path, absolute: bool) -> None:
    before = host_state(host_dir)
    target = "/etc" if absolute else DEEP + "etc"
    base = hostile_base(build, "etc", target)
    step = build.step("01-hostile", sh("echo ran > /ran"), [base])
    result = step.run()
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"acigen-chroot-run: error: /etc in the image is a symlink to {target}, which does "
        "not lead to a directory inside the image (too many levels of symbolic links)")
    assert host_state(host_dir) == before


def test_etc_linked_to_a_host_directory_is_refused(build: Build, host_dir: Path) -> None:
    before = host_state(host_dir)
    base = hostile_base(build, "etc", str(host_dir))
    step = build.step("01-hostile", sh("echo ran > /ran"), [base])
    result = step.run()
    assert result.returncode == 1
    assert "/etc in the image is a symlink to " + str(host_dir) in result.stderr
    assert sorted(os.listdir(host_dir)) == ["keep"]
    assert host_state(host_dir) == before


@pytest.mark.parametrize(("name", "target"), [
    ("etc/resolv.conf", "/etc/passwd"),
    ("etc/resolv.conf", DEEP + "etc/shadow"),
    ("etc/hosts", "HOST_DIR/hosts"),  # dangling: nothing may be made at its target
    ("usr/sbin/policy-rc.d", "HOST_DIR/policy-rc.d"),
    ("usr/sbin/policy-rc.d", DEEP + "usr/sbin/policy-rc.d"),
])
def test_a_symlinked_build_time_file_is_covered_not_followed(
        build: Build, host_dir: Path, name: str, target: str) -> None:
    target = target.replace("HOST_DIR", str(host_dir))
    before = host_state(host_dir)
    base = hostile_base(build, name, target)
    image_passwd = (base / "tree" / "etc" / "passwd").read_bytes()
    step = build.step("01-hostile", sh(f"cat /{name} > /seen", make_debian_policy_rc=True),
                      [base])
    result = step.run()
    assert result.returncode == 0, result.stderr
    seen = (step.tree / "seen").read_bytes()
    if name == "usr/sbin/policy-rc.d":
        assert seen.endswith(b"exit 101\n")
    else:
        assert seen == Path("/" + name).read_bytes()  # the host's copy, as asked
    assert step.changes(base) == ["seen"]
    assert os.readlink(base / "tree" / name) == target
    assert (base / "tree" / "etc" / "passwd").read_bytes() == image_passwd
    assert sorted(os.listdir(host_dir)) == ["keep"]
    assert host_state(host_dir) == before
