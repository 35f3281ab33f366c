"""Layer mode fuse (fuse-overlayfs): the same layers, images and OCI layers
as the kernel's overlayfs, as root and rootless; a killed helper leaves no
fuse-overlayfs behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.rootless.conftest import USER
from tests.rootless.test_rootless import _build, _busybox_base, _busybox_manifest, _same_files
from tests.support import rootless
from tests.support.leaks import mounts_under, processes_under
from tests.support.procs import pids_with
from tests.support.rootfs import busybox_tree, tar_of

ARGS = ["--oci", "m.oci.tar", "m.json"]


@pytest.fixture(autouse=True)
def fuse_overlayfs() -> None:
    for tool in ("fuse-overlayfs", "setfacl", "getfacl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install fuse-overlayfs acl)")


def _prepared(area: Path, name: str) -> Path:
    work = area / name
    work.mkdir()
    _busybox_base(work)
    _busybox_manifest(work)
    return work


def _fuse_daemons(under: Path) -> list[int]:
    """fuse-overlayfs processes mounting a layer of a build under UNDER (it
    leaves its working directory: found by the layer names it was given)."""
    names = [f"{p.name}/mnt" for p in under.glob("**/.acigen/layers/*") if p.is_dir()]
    return [pid for pid in pids_with("fuse-overlayfs")
            if any(name in _cmdline(pid) for name in names)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _cwd_under(pid: int, under: Path) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/cwd").startswith(str(under))
    except OSError:
        return False


def _helpers(under: Path) -> list[int]:
    """The step helpers of the build in UNDER (other builds may run meanwhile)."""
    return [pid for pid in pids_with("-m acigen.helpers.chroot_run") if _cwd_under(pid, under)
            and _cmdline(pid).startswith("/")]  # the helper, not the shell that started it


def _markers(work: Path) -> list[str]:
    """fuse-overlayfs' own markers and xattrs left in the layer trees."""
    found = []
    for path in (work / ".acigen" / "layers").glob("*/tree/**/*"):
        if path.name in (".wh..wh..opq", ".wh..opq"):
            found.append(str(path))
        if not path.is_symlink():
            found += [f"{path}: {x}" for x in os.listxattr(path) if "fuseoverlayfs" in x]
    return found


def test_fuse_mode_as_root_is_byte_identical_to_overlay(area: Path, python: str) -> None:
    """A step that deletes files, renames a directory and empties and refills
    another (an opaque directory): the same .aci and per-step OCI layers."""
    overlay, fuse = _prepared(area, "overlay"), _prepared(area, "fuse")
    _build(python, overlay, ["--layer-mode", "overlay", *ARGS], None)
    _build(python, fuse, ["--layer-mode", "fuse", *ARGS], None)
    _same_files(overlay, fuse, ["m.aci", "m.oci.tar"])
    assert _markers(fuse) == []
    [opaque] = [p for p in (fuse / ".acigen" / "layers").glob("02-*/tree/**/*")
                if p.is_dir() and "trusted.overlay.opaque" in os.listxattr(p)]
    assert opaque.name == "keep"  # emptied and refilled; the new /var/new is not opaque
    assert _fuse_daemons(area) == []


def test_an_extract_step_in_fuse_mode_is_byte_identical(area: Path, python: str) -> None:
    """extract deletes most of the root below it: thousands of whiteouts, and
    directories emptied, in the kernel's form."""
    works = {mode: _prepared(area, mode) for mode in ("overlay", "fuse")}
    for mode, work in works.items():
        doc = json.loads((work / "m.json").read_text())
        doc["-aci-packer-build-steps-"].append(
            {"type": "extract", "binaries": ["/bin/busybox"], "keeps": ["/var/lib/app/**"]})
        (work / "m.json").write_text(json.dumps(doc, indent=2) + "\n")
        _build(python, work, ["--layer-mode", mode, *ARGS], None)
    _same_files(works["overlay"], works["fuse"], ["m.aci", "m.oci.tar"])
    assert _markers(works["fuse"]) == []


def test_fuse_mode_rootless_is_byte_identical_to_a_root_overlay_build(
        area: Path, python: str) -> None:
    root, user = _prepared(area, "root"), _prepared(area, "user")
    _build(python, root, ARGS, None)
    with rootless.fuse_device_for(USER):
        out = _build(python, user, ["--layer-mode", "fuse", *ARGS], USER).stdout
    assert "(layers: fuse (userns))" in out
    _same_files(root, user, ["m.aci", "m.oci.tar"])
    assert _markers(user) == []
    assert _fuse_daemons(area) == []


def test_fuse_mode_needs_the_device_one_line(area: Path, python: str) -> None:
    """Rootless, where /dev/fuse is root's alone (as on this host): forcing
    the mode fails with one line that names the way out."""
    if os.stat("/dev/fuse").st_mode & 0o006:
        pytest.skip("/dev/fuse is open to every user on this host")
    work = _prepared(area, "nofuse")
    done = _build(python, work, ["--layer-mode", "fuse", "m.json"], USER, check=False)
    assert done.returncode == 1
    [line] = [x for x in (done.stdout + done.stderr).splitlines() if "error:" in x]
    assert "cannot mount the layers with fuse-overlayfs" in line, line


def test_a_killed_helper_leaves_no_fuse_overlayfs(area: Path, python: str) -> None:
    """SIGKILL to the step's helper itself: fuse-overlayfs dies with it
    (its parent-death signal) and nothing stays mounted or running."""
    marker = f"sleep 600; echo {area.name} > /ran"
    tree = busybox_tree(area / "tree")
    tar_of(tree, area / "base.tar")
    shutil.rmtree(tree)
    doc = {"name": "example.com/slow", "app": {"exec": ["/bin/busybox"], "user": "0",
                                               "group": "0"},
           "-aci-packer-build-steps-": [
               {"type": "image", "path": "base.tar"},
               {"type": "cmd", "copy": False, "path": "/bin/sh", "args": ["-c", marker]}]}
    (area / "m.json").write_text(json.dumps(doc))
    build = subprocess.Popen([python, "-m", "acigen", "-b", "--layer-mode", "fuse", "m.json"],
                             cwd=area, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not pids_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_with(marker), "the step never started"
        assert _fuse_daemons(area), "the step's layers are not on fuse-overlayfs"
    finally:
        for pid in _helpers(area):
            os.kill(pid, signal.SIGKILL)
        build.wait(timeout=120)
    deadline = time.monotonic() + 30
    while (pids_with(marker) or _fuse_daemons(area) or processes_under([area])
           or mounts_under([area])) and time.monotonic() < deadline:
        # the guard kills and deletes the container; the helper's mount
        # namespace goes with the last of them
        time.sleep(0.1)
    assert not pids_with(marker)
    assert _fuse_daemons(area) == []
    assert not processes_under([area])
    assert not mounts_under([area])
