"""`acigen gc` and `acigen clean` on real build directories.

gc keeps what the current build file uses and removes the rest (layers,
stamps, logs, step files, cached chunks); both refuse, removing nothing,
while something under the build directory is mounted or locked.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.build import acigen, is_noop, run_ninja, steps_run
from tests.support.busybox import busybox_tar, write_manifest
from tests.support.httpserver import FileServer, Resource


def listing(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*")}


@pytest.fixture
def built(tmp_path: Path) -> Iterator[Path]:
    """keep and drop share two layers; drop has one of its own.  Built, then
    regenerated for keep alone."""
    with FileServer() as server:
        server.add("/base.tar", Resource(busybox_tar()))
        work = tmp_path / "gc"
        work.mkdir()
        for name in ("one", "keep", "drop"):
            (work / f"{name}.txt").write_text(f"{name}\n")
        base = [{"type": "image", "url": server.url("/base.tar")}, copy("one.txt", "/etc/one")]
        write_manifest(work / "keep.json", [*base, copy("keep.txt", "/etc/who")])
        write_manifest(work / "drop.json", [*base, copy("drop.txt", "/etc/who")])
        cache = ["--cache-dir", str(tmp_path / "cache")]
        acigen(work, *cache, "keep.json", "drop.json")
        run_ninja(work)
        acigen(work, *cache, "keep.json")
        yield work


def copy(host: str, image: str) -> dict:
    return {"type": "copy_host_files", "files": [[host, image]]}


def gc(work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "acigen", *args], cwd=work,
                            capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def layer_names(work: Path) -> set[str]:
    return {p.name for p in (work / ".acigen" / "layers").iterdir() if p.is_dir()}


def test_gc_keeps_what_the_build_file_uses_and_removes_the_rest(built: Path,
                                                                  no_mount_leaks) -> None:
    state = built / ".acigen"
    dropped = {p.stem for p in (state / "steps").glob("03-*.json")
               if "drop.txt" in p.read_text()}
    assert len(dropped) == 1 and len(layer_names(built)) == 4
    chunks_before = listing(state / "chunks")
    # the download's inputs changed (drop.lock.json no longer needs its digest),
    # so ninja plans it and, not knowing it will leave its output alone, the rest
    planned = steps_run(run_ninja(built, "-n").stdout)
    plan = gc(built, "gc", "-n").stdout
    assert all(name in plan for name in dropped)
    assert listing(state / "chunks") == chunks_before  # -n removes nothing

    out = gc(built, "gc").stdout
    assert " entries (1 layer) and " in out, out
    assert layer_names(built).isdisjoint(dropped) and len(layer_names(built)) == 3
    (name,) = dropped
    for gone in (f"layers/{name}.stamp", f"layers/{name}.lock", f"layers/{name}.stamp.d",
                 f"logs/{name}.log", f"steps/{name}.json"):
        assert not (state / gone).exists(), gone
    assert not list((state / "images").glob("drop-*.json"))
    uses = [p.read_text().splitlines() for p in (state / "chunks" / "uses").iterdir()]
    assert [u[0] for u in uses] == [str(built / "keep.aci")]
    live = set(uses[0][1:])
    assert {p.name for p in (state / "chunks").iterdir()} - {"lock", "uses"} == live
    assert (built / "drop.aci").exists()  # outside the build directory: not ours to remove
    assert steps_run(run_ninja(built, "-n").stdout) == planned  # gc took nothing in use
    ran = steps_run(run_ninja(built).stdout)
    assert len(ran) == 1 and ": fetch http://" in ran[0]  # unchanged: restat stops the rest
    assert is_noop(built)
    assert gc(built, "gc").stdout.startswith("acigen gc: removed 0 entries (0 layers) and 0 ")


def test_clean_removes_the_build_and_the_next_build_makes_the_same_image(
        built: Path, no_mount_leaks) -> None:
    image = (built / "keep.aci").read_bytes()
    gc(built, "clean")
    state = built / ".acigen"
    assert not list((state / "layers").iterdir()) and not list((state / "logs").iterdir())
    assert not list((state / "fetch").glob("*.ref"))
    assert list((state / "steps").glob("*.json")) and (built / "build.ninja").exists()
    out = run_ninja(built).stdout
    assert len(steps_run(out)) == 5  # download, three layers, pack
    assert (built / "keep.aci").read_bytes() == image


@pytest.fixture
def mounted(built: Path) -> Iterator[Path]:
    """A tmpfs mounted under the build directory, in another mount namespace
    (as a running step's view would be); gone when the holder exits."""
    target = built / ".acigen" / "mnt" / "held"
    target.mkdir(parents=True)
    with subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs acigen-test '{target}' && echo ready && exec sleep 600"],
            stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
            yield target
        finally:
            holder.kill()


@pytest.mark.parametrize("command", ["gc", "clean"])
def test_nothing_is_removed_while_something_is_mounted(built: Path, mounted: Path,
                                                        command: str, no_mount_leaks) -> None:
    before = listing(built)
    result = gc(built, command, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (f"acigen: error: {mounted} is mounted; nothing "
                                             "was removed")
    assert listing(built) == before


def test_nothing_is_removed_while_a_layer_is_locked(built: Path) -> None:
    before = listing(built)
    # the layer gc would remove (drop's own); clean would remove every layer
    state = built / ".acigen"
    (dropped,) = [p.stem for p in (state / "steps").glob("03-*.json")
                  if "drop.txt" in p.read_text()]
    lock = state / "layers" / f"{dropped}.lock"
    with open(lock) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        results = [gc(built, "gc", check=False), gc(built, "clean", check=False)]
    assert [r.returncode for r in results] == [1, 1]
    assert all("is locked: a build is using it; nothing was removed" in r.stderr
               for r in results)
    assert listing(built) == before


def test_gc_refuses_a_build_file_changed_by_hand(built: Path) -> None:
    before = listing(built)
    with open(built / "build.ninja", "a") as ninja_file:
        ninja_file.write("# edited\n")
    result = gc(built, "gc", check=False)
    assert result.returncode == 1
    assert f"{built / 'build.ninja'} changed since acigen wrote it" in result.stderr
    assert listing(built) == before


@pytest.mark.parametrize("command", ["gc", "clean"])
def test_gc_and_clean_remove_partial_images_of_killed_packs(built: Path, command: str) -> None:
    left = built / ".keep.aci.tmp-x1y2z3"  # what a SIGKILLed pack leaves: nobody holds it
    left.write_bytes(b"half an image")
    writing = built / ".keep.aci.tmp-a1b2c3"  # a pack still writing holds its lock
    with open(writing, "wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        out = gc(built, command).stdout
    assert "and 1 partial image" in out, out
    assert not left.exists() and writing.exists()
    assert (built / "keep.aci").exists()
