"""A full disk outside pack and atomic_write: one line, exit 1, never an
internal error (exit 3).  The disk is a real one: a small tmpfs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image import rawtar
from tests.support.build import acigen, run_ninja
from tests.support.busybox import write_manifest
from tests.support.disks import small_tmpfs

FULL = "No space left on device"


@pytest.fixture
def small_disk(tmp_path: Path, no_mount_leaks: None) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "disk", "4m") as disk:
        yield disk


@pytest.fixture
def big_tar(tmp_path: Path) -> Path:
    """An archive twice the disk's size (random: no compression shrinks it)."""
    path = tmp_path / "work" / "big.tar"
    path.parent.mkdir()
    path.write_bytes(rawtar.member(b"big", os.urandom(8 << 20)) + rawtar.END)
    return path


def failed_step(output: str, prog: str) -> list[str]:
    """The failing helper's own lines in ninja's output, checked to have
    exited 1 (ninja says `FAILED: [code=N]`)."""
    assert "FAILED: [code=1] " in output, output
    assert "internal error" not in output and "Traceback" not in output, output
    return [line for line in output.splitlines()
            if line.startswith((f"{prog}: ", "hint: "))]


def test_a_fetch_onto_a_full_disk_names_the_file_written(small_disk: Path,
                                                         big_tar: Path) -> None:
    """A file:// download is copied into the cache: the ENOSPC reaches
    run_main, which names the cache file (not the file read)."""
    work = big_tar.parent
    write_manifest(work / "m.json", [{"type": "image", "url": big_tar.as_uri()}])
    acigen(work, "--cache-dir", str(small_disk / "cache"), "m.json")
    failed = run_ninja(work, check=False)
    assert failed.returncode == 1
    line, hint = failed_step(failed.stdout, "acigen-fetch")
    assert line.startswith(f"acigen-fetch: error: {small_disk}/cache/"), line
    assert line.endswith(f": {FULL}"), line
    assert hint == "hint: free some space and build again"


def test_an_unpack_onto_a_full_disk_is_one_line(small_disk: Path, big_tar: Path) -> None:
    work = big_tar.parent
    write_manifest(work / "m.json", [{"type": "image", "path": "big.tar"}])
    acigen(work, "-B", str(small_disk / "build"), "m.json")
    failed = run_ninja(work, check=False)
    assert failed.returncode == 1
    assert failed_step(failed.stdout, "acigen-unpack") == [
        f"acigen-unpack: error: member 'big': {FULL}"]


def test_the_whole_suite_on_a_full_disk_stops_with_one_line(small_disk: Path) -> None:
    """The test suite itself: a whole run with no room says so before any test,
    instead of failing hundreds of them for reasons that do not name the disk."""
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
                            cwd=repo, env=dict(os.environ, TMPDIR=str(small_disk)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert f"the whole test suite needs 6 GiB free under {small_disk}; it has 0.0 GiB" \
        in result.stdout
    assert "passed" not in result.stdout and "failed" not in result.stdout
