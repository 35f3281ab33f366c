"""Builds for bench/run: manifests, acigen + ninja in fresh directories, the nginx example.

Each build gets a fresh directory under the run's temporary directory, so a "clean
build" really starts from nothing (layers, chunk cache).  Local bases are symlinks
to the cached Debian minbase tarball, never copies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from common import REPO, run_quietly

STEPS = "-aci-packer-build-steps-"
EXAMPLES = REPO / "examples"
MINBASE = "bookworm-minbase.tar"  # the name the nginx example expects beside it


def ninja_binary() -> str:
    from tests.support.tools import ninja
    return ninja()


def acigen(workdir: Path, *args: str) -> str:
    return run_quietly([sys.executable, "-m", "acigen", *args], cwd=workdir)


def ninja(workdir: Path, *args: str) -> str:
    return run_quietly([ninja_binary(), *args], cwd=workdir)


def fresh_dir(parent: Path, name: str) -> Path:
    path = parent / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def link_minbase(workdir: Path, tarball: Path) -> None:
    (workdir / MINBASE).symlink_to(tarball)


def shell_step(script: str) -> dict:
    return {"type": "cmd", "copy": False, "path": "/bin/sh", "args": ["-c", script]}


def write_manifest(path: Path, steps: list[dict], exec_: str = "/bin/sh") -> Path:
    doc = {"name": f"example.com/{path.stem}",
           "app": {"exec": [exec_], "user": "0", "group": "0"}, STEPS: steps}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def minbase_chain(count: int, base: str = MINBASE) -> list[dict]:
    """The root archive BASE, then COUNT - 1 small shell steps (one file each)."""
    return [{"type": "image", "path": base, "devices": "skip"},
            *(shell_step(f"echo {i} > /etc/bench-step-{i}") for i in range(1, count))]


def edit_last_step(manifest: Path, script: str) -> None:
    """Replace the script of MANIFEST's last (shell) step."""
    doc = json.loads(manifest.read_text())
    doc[STEPS][-1]["args"][-1] = script
    manifest.write_text(json.dumps(doc, indent=1) + "\n")


def is_noop(workdir: Path) -> bool:
    return "no work to do" in ninja(workdir, "-n")


def nginx_manifest(workdir: Path, edit: int = 0) -> Path:
    """examples/nginx/nginx.json in WORKDIR; EDIT > 0 adds a write to its last step."""
    path = workdir / "nginx.json"
    shutil.copyfile(EXAMPLES / "nginx" / "nginx.json", path)
    if edit:
        edit_nginx(path, edit)
    return path


def edit_nginx(manifest: Path, edit: int) -> None:
    edit_last_step(manifest, f"rm -rf /var/lib/apt/lists/*; echo {edit} > /etc/bench-edit")


def example_dir(parent: Path, example: str) -> Path:
    """A copy of examples/EXAMPLE (its manifest reads files beside it) under PARENT."""
    workdir = parent / example
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(EXAMPLES / example, workdir, symlinks=True)
    return workdir


def image_rootfs(aci: Path, dest: Path) -> Path:
    """The rootfs/ of image ACI, unpacked by GNU tar at DEST (owners, xattrs, devices)."""
    dest.mkdir(parents=True)
    run_quietly(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(aci),
                 "-C", str(dest), "--strip-components=1", "rootfs"])
    return dest


def image_manifest(aci: Path) -> bytes:
    return subprocess.run(["tar", "-xOf", str(aci), "manifest"], check=True,
                          capture_output=True).stdout
