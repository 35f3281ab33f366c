"""No wrong image from a damaged cache, a full disk or a killed pack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pack.run import SUMMARY, pack, pack_tree
from tests.pack.trees import text_tree, write_manifest
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
