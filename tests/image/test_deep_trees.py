"""Trees deeper than Python's recursion limit: every walk is iterative.

A build can make a 1,500-level tree (an archive or a command does); its
layer must still be walked, pruned, measured and removed."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acigen.errors import HelperError
from acigen.helpers.builddir.gc import size_of
from acigen.helpers.core import treeremove
from acigen.helpers.core.treeremove import remove_tree
from acigen.helpers.layers.layers import wipe
from acigen.helpers.rootfs.root import Root
from acigen.helpers.unpack.image import unpack_archive
from acigen.treewalk import iter_tree
from tests.elf import elfwriter
from tests.image import rawtar
from tests.support.build import acigen, run_ninja
from tests.support.busybox import write_manifest
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


def test_removing_a_deep_tree_needs_few_file_descriptors(tmp_path: Path) -> None:
    """As under sudo, whose soft limit is 1,024 open files: one fd per level
    would fail with EMFILE here."""
    deep_tree(tmp_path / "layer", DEPTH)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        remove_tree(str(tmp_path / "layer"))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not (tmp_path / "layer").exists()


def test_a_tree_moved_while_it_is_removed_is_not_followed(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory whose '..' is no longer the one it was entered from stops
    the removal: it never goes on in a place it did not choose.  The move is
    made (by a real rename) the first time a closed level is reopened."""
    deep_tree(tmp_path / "layer", 200)  # deeper than OPEN_LEVELS: levels get closed
    (tmp_path / "elsewhere").mkdir()
    reopen = treeremove._parent_fd

    def move_then_reopen(stack, child, base, path):  # type: ignore[no-untyped-def]
        if stack and stack[-1].fd < 0 and (tmp_path / "layer" / "d").exists():
            os.rename(tmp_path / "layer" / "d", tmp_path / "elsewhere" / "d")
        return reopen(stack, child, base, path)

    monkeypatch.setattr(treeremove, "_parent_fd", move_then_reopen)
    with pytest.raises(HelperError, match="moved while it was being removed"):
        remove_tree(str(tmp_path / "layer"))
    assert (tmp_path / "elsewhere" / "d").is_dir()  # the moved tree's top was not removed


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


def test_acigen_clean_removes_a_deep_layer(tmp_path: Path, no_mount_leaks: None) -> None:
    """A build whose image step makes a 1,500-level tree; `acigen clean`, the
    command, removes its layer (it once died of RecursionError)."""
    work = tmp_path / "work"
    work.mkdir()
    deep = rawtar.pax(rawtar.pax_record(b"path", b"/".join([b"d"] * DEPTH) + b"/f"))
    (work / "deep.tar").write_bytes(deep + rawtar.member(b"placeholder", b"x") + rawtar.END)
    write_manifest(work / "deep.json", [{"type": "image", "path": "deep.tar"}])
    acigen(work, "deep.json")
    run_ninja(work)
    (layer,) = (p for p in (work / ".acigen" / "layers").iterdir() if p.is_dir())
    assert sum(1 for _ in iter_tree(str(layer))) >= DEPTH
    result = acigen(work, "clean", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("acigen clean: removed ") and "(1 layer)" in result.stdout
    assert list((work / ".acigen" / "layers").iterdir()) == []
