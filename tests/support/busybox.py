"""Small real images for build tests: a busybox root served over HTTP.

The root is `tests.support.rootfs.busybox_tree()` as a tar, served by a
`FileServer` on 127.0.0.1; steps run `/bin/busybox` inside it.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tests.support.rootfs import busybox_tree, tar_of

STEPS = "-aci-packer-build-steps-"
_tar: bytes | None = None


def busybox_tar() -> bytes:
    """The busybox root as an uncompressed tar (made once per test run)."""
    global _tar
    if _tar is None:
        with tempfile.TemporaryDirectory() as tmp:
            tree = busybox_tree(Path(tmp) / "tree")
            _tar = tar_of(tree, Path(tmp) / "base.tar").read_bytes()
    return _tar


def shell(script: str) -> dict:
    """A cmd step running SCRIPT with the image's busybox sh."""
    return {"type": "cmd", "copy": False, "path": "/bin/busybox", "args": ["sh", "-c", script]}


def write_manifest(path: Path, steps: list[dict]) -> Path:
    name = path.stem
    doc = {"name": f"example.com/{name}",
           "app": {"exec": ["/bin/busybox", "true"], "user": "0", "group": "0"},
           STEPS: steps}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def image_file(aci: Path, member: str) -> bytes:
    """The content of MEMBER (e.g. rootfs/etc/who) in image ACI."""
    with tarfile.open(aci) as tar:
        extracted = tar.extractfile(member)
        assert extracted is not None, f"{member} is not a file in {aci}"
        return extracted.read()


def ninja_log(workdir: Path) -> dict[str, tuple[int, int]]:
    """Output -> (start, end) in ms, from ninja's own log of the last runs."""
    out = {}
    for line in (workdir / ".acigen" / ".ninja_log").read_text().splitlines():
        if line.startswith("#"):
            continue
        start, end, _mtime, path = line.split("\t")[:4]
        out[path] = (int(start), int(end))
    return out


def make(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["make", *args], cwd=workdir, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"make {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def make_steps(output: str) -> list[str]:
    """The descriptions a make build printed (acigen's recipes print them)."""
    return re.findall(r"^([^\t\n]+: (?:step \d+ .*|fetch .*|pack .*))$", output, re.M)
