"""No wrong image from a damaged cache, a full disk or a killed pack."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.fileio import atomic_write
from tests.pack.run import SUMMARY, pack, pack_tree
from tests.pack.trees import text_tree, write_manifest
from tests.support.disks import small_tmpfs
from tests.support.tools import validate_aci


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "manifest.json")


def chunk_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if p.is_file() and p.name != "lock")


@pytest.mark.parametrize("compression", ["gzip", "xz"])
def test_a_damaged_cached_chunk_is_compressed_again(compression: str, manifest: Path,
                                                    tmp_path: Path) -> None:
    tree = text_tree(tmp_path / "tree", files=120, size=15_000)
    cache = tmp_path / "cache"
    options = ["-C", compression, "--chunk-size", "0.25", "--chunk-cache", cache]
    first = pack_tree(tree, manifest, tmp_path / "first.aci", *options)
    victim = chunk_files(cache)[len(chunk_files(cache)) // 2]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])  # cut in half
    again = pack("--manifest", manifest, "--rootfs", tree, "-o", tmp_path / "again.aci",
                 *options)
    validate_aci(tmp_path / "again.aci")
    match = SUMMARY.match(again.stdout.strip())
    assert match and match["id"] == first.image_id
    assert int(match["reused"]) == first.chunks - 1
    assert (tmp_path / "again.aci").read_bytes() == (tmp_path / "first.aci").read_bytes()
    assert again.stderr.count("\n") == 1 and "1 damaged chunk(s)" in again.stderr
    assert victim.name in again.stderr
    healed = pack_tree(tree, manifest, tmp_path / "again.aci", *options)
    assert healed.reused == healed.chunks  # the damaged one was stored again, whole


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real full disk."""
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        yield disk


@pytest.mark.parametrize("full", ["image", "chunk cache"])
def test_a_full_disk_is_one_line_naming_the_file(full: str, small_disk: Path, manifest: Path,
                                                 tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "noise").write_bytes(os.urandom(3 << 20))  # incompressible: 3 MiB > 1 MiB
    out = small_disk / "i.aci" if full == "image" else tmp_path / "i.aci"
    cache = tmp_path / "cache" if full == "image" else small_disk / "cache"
    result = pack("--manifest", manifest, "--rootfs", tree, "-o", out, "--chunk-cache", cache,
                  "--chunk-size", "0.25", check=False)
    assert result.returncode == 1, result.stderr
    first, hint = result.stderr.splitlines()
    where = str(out) if full == "image" else str(cache) + "/"
    assert first.startswith(f"acigen-pack: error: {where}"), first
    assert first.endswith(": No space left on device") and hint.startswith("hint: free")
    assert not out.exists()
    assert [p for p in out.parent.iterdir() if ".tmp-" in p.name] == []


def killed_pack(tree: Path, manifest: Path, out: Path) -> Path:
    """Start a pack of OUT, SIGKILL it while it writes: its partial image."""
    proc = subprocess.Popen([sys.executable, "-m", "acigen.helpers.pack", "--manifest",
                             str(manifest), "--rootfs", str(tree), "-o", str(out), "-C", "xz",
                             "-j", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (partial := list(out.parent.glob(f".{out.name}.tmp-*"))):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    [leftover] = partial
    assert leftover.exists()
    return leftover


def test_the_next_pack_removes_what_a_killed_pack_left(manifest: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "noise").write_bytes(os.urandom(8 << 20))
    out = tmp_path / "out" / "i.aci"
    leftover = killed_pack(tree, manifest, out)
    live = out.parent / f".{out.name}.tmp-live"  # another pack's, still writing
    with open(live, "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        pack_tree(tree, manifest, out)
        assert not leftover.exists() and live.exists()
    validate_aci(out)


def test_every_atomic_write_names_its_file_on_a_full_disk(small_disk: Path) -> None:
    target = small_disk / "layers" / "01.stamp"
    with pytest.raises(HelperError, match=f"^{target}: No space left on device$"):
        atomic_write(str(target), os.urandom(2 << 20))
    assert [p.name for p in (small_disk / "layers").iterdir()] == []  # no temporary left
