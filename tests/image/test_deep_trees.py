"""Trees deeper than Python's recursion limit: every walk is iterative.

A build can make a 1,500-level tree (an archive or a command does); its
layer must still be walked, pruned, measured and removed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acigen.helpers.builddir.gc import size_of
from acigen.helpers.core.treeremove import remove_tree
from acigen.helpers.layers.layers import wipe
from acigen.helpers.rootfs.root import Root
from acigen.helpers.unpack.image import unpack_archive

from acigen.treewalk import iter_tree
from tests.elf import elfwriter
from tests.image import rawtar
from tests.support.trees import deep_tree

DEPTH = 1500  # past the default recursion limit of 1,000


@pytest.fixture(autouse=True)
def _removed_after(tmp_path: Path) -> Iterator[None]:
    """pytest's own cleanup (shutil.rmtree) dies on a deep tree, in every
    later session on this machine: leave none behind."""
    yield
    for entry in tmp_path.iterdir():
        remove_tree(str(entry))


def test_walk_measure_and_wipe(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    deep_tree(layer / "tree", DEPTH)
    assert sum(1 for _ in iter_tree(str(layer))) == DEPTH + 2  # tree, the d's, f
    assert size_of(str(layer)) == 0
    wipe(str(layer))
    assert not layer.exists()


def test_root_remove(tmp_path: Path) -> None:
    deep_tree(tmp_path / "root" / "junk", DEPTH)
    with Root(str(tmp_path / "root")) as root:
        root.remove("junk")
    assert os.listdir(tmp_path / "root") == []


def test_an_archive_of_a_deep_tree_unpacks_and_its_layer_goes(tmp_path: Path) -> None:
    path = b"/".join([b"d"] * DEPTH)
    record = rawtar.pax_record(b"path", path + b"/f")
    archive = tmp_path / "deep.tar"
    archive.write_bytes(rawtar.pax(record) + rawtar.member(b"placeholder", b"x") + rawtar.END)
    (tmp_path / "layer" / "tree").mkdir(parents=True)
    unpack_archive(str(archive), str(tmp_path / "layer" / "tree"))
    assert sum(1 for _ in iter_tree(str(tmp_path / "layer"))) == DEPTH + 2
    wipe(str(tmp_path / "layer"))
    assert not (tmp_path / "layer").exists()


@pytest.mark.parametrize("kept", ["/bin/prog", "/junk/" + "d/" * DEPTH + "f"])
def test_extract_prunes_a_deep_tree(tmp_path: Path, kept: str) -> None:
    """Removed whole, or walked down to a kept file at the bottom."""
    root = tmp_path / "root"
    deep_tree(root / "junk", DEPTH)
    elfwriter.write(root / "bin" / "prog", dynamic=False, e_type=elfwriter.ET_EXEC)
    result = subprocess.run([sys.executable, "-m", "acigen.helpers.extract", "--root", str(root),
                             "--binary", "/bin/prog", "--keep", kept],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    remaining = sum(1 for _ in iter_tree(str(root)))
    assert remaining == (2 if kept == "/bin/prog" else DEPTH + 4)
