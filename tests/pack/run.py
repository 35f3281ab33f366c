"""Running acigen-pack as ninja does: a separate process."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.tools import validate_aci

SUMMARY = re.compile(r"^(?P<name>\S+): (?P<id>sha512-[0-9a-f]{128}) \((?P<entries>\d+) entries, "
                     r".* (?P<chunks>\d+) chunks, (?P<reused>\d+) from cache\)$")


@dataclass(frozen=True)
class Packed:
    image_id: str
    chunks: int
    reused: int


def pack(*args: str | Path, cwd: Path | None = None, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "acigen.helpers.pack", *map(str, args)],
                            capture_output=True, text=True, cwd=cwd)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def pack_tree(tree: Path, manifest: Path, out: Path, *args: str | Path) -> Packed:
    """Pack by hand and check the image with actool; the summary line, parsed."""
    result = pack("--manifest", manifest, "--rootfs", tree, "-o", out, *args)
    validate_aci(out)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    assert result.stderr == ""
    return Packed(match["id"], int(match["chunks"]), int(match["reused"]))


def decompress(image: Path) -> bytes:
    """The image's tar, decompressed by the usual command-line tool."""
    magic = image.read_bytes()[:6]
    tool = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz"}
    for prefix, name in tool.items():
        if magic.startswith(prefix):
            return subprocess.run([name, "-dc", str(image)], check=True,
                                  capture_output=True).stdout
    return image.read_bytes()


def image_id_of(tar: bytes) -> str:
    return "sha512-" + hashlib.sha512(tar).hexdigest()
