"""The image step as ninja runs it: step_main, layers, stamps, mounts."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from acigen.helpers.layers.layers import tree
from tests.image.conftest import REPO, error_lines, run_helper, sha256
from tests.image.hostile import build_corpus
from tests.image.treediff import describe

MODES = ["overlay", "copy"]


def make_tar(path: Path, entries: list[tuple[str, str, bytes | str]],
             gzip: bool = False) -> Path:
    """ENTRIES: (name, 'dir' | 'file' | 'symlink', data or link target)."""
    with tarfile.open(path, "w:gz" if gzip else "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
                tar.addfile(info)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return path


def usr_merged_base(path: Path) -> Path:
    return make_tar(path, [
        ("usr", "dir", ""), ("usr/lib", "dir", ""), ("usr/bin", "dir", ""),
        ("lib", "symlink", "usr/lib"), ("bin", "symlink", "usr/bin"),
        ("usr/lib/libbase.so", "file", "base library"), ("etc", "dir", ""),
        ("etc/old", "file", "replaced later"),
    ])


def write_step(build: Path, name: str, lower: list[str], step: dict[str, Any],
               mode: str) -> tuple[str, str]:
    """A step file as acigen writes it; (step file, stamp), relative to BUILD."""
    spec = {"acigen": "0.1.0", "label": f"test: {name}", "layer": f".acigen/layers/{name}",
            "lower": [f".acigen/layers/{low}" for low in lower], "layer_mode": mode,
            "log": f".acigen/logs/{name}.log", "step": {"type": "image", **step}}
    path = build / ".acigen" / "steps" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return f".acigen/steps/{name}.json", f".acigen/stamps/{name}.stamp"


def run_step(build: Path, step_file: str, stamp: str) -> subprocess.CompletedProcess[str]:
    (build / ".acigen" / "stamps").mkdir(parents=True, exist_ok=True)
    return run_helper("unpack", "--step", step_file, "--stamp", stamp, cwd=build)


@pytest.mark.parametrize("mode", MODES)
def test_image_over_a_usr_merged_layer(tmp_path: Path, mode: str, no_mount_leaks: None) -> None:
    build = tmp_path / "build"
    build.mkdir()
    usr_merged_base(build / "base.tar")
    make_tar(build / "extra.tar.gz", [
        ("lib", "dir", ""), ("lib/libextra.so", "file", "through the base's lib link"),
        ("bin/tool", "file", "#!/bin/sh\n"), ("etc/old", "file", "new content"),
        ("etc/fresh", "symlink", "/etc/alternatives/fresh"),
    ], gzip=True)
    base = write_step(build, "01-base", [], {"path": "base.tar"}, mode)
    assert run_step(build, *base).returncode == 0
    extra = write_step(build, "02-extra", ["01-base"],
                       {"path": "extra.tar.gz", "sha256": sha256((build / "extra.tar.gz")
                                                                 .read_bytes())}, mode)
    result = run_step(build, *extra)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("02-extra: unpacked extra.tar.gz (gzip archive): "
                             "5 entries, 0.0 MB\n")
    stamp = json.loads((build / extra[1]).read_text())
    assert stamp["mode"] == mode and stamp["layer"] == "02-extra"
    layer = Path(tree(str(build / ".acigen" / "layers" / "02-extra")))
    # the base's usr-merge links were followed inside the root, and kept
    assert (layer / "usr" / "lib" / "libextra.so").read_text() == "through the base's lib link"
    assert (layer / "usr" / "bin" / "tool").exists()
    assert (layer / "etc" / "old").read_text() == "new content"
    assert os.readlink(layer / "etc" / "fresh") == "/etc/alternatives/fresh"
    if mode == "overlay":  # the layer holds only its changes
        assert not os.path.lexists(layer / "lib")
        assert not (layer / "usr" / "lib" / "libbase.so").exists()
    else:  # the layer holds the whole root
        assert os.readlink(layer / "lib") == "usr/lib"
        assert (layer / "usr" / "lib" / "libbase.so").read_text() == "base library"
    base_tree = Path(tree(str(build / ".acigen" / "layers" / "01-base")))
    assert (base_tree / "etc" / "old").read_text() == "replaced later"  # lower untouched


def test_image_from_a_fetched_ref(tmp_path: Path, no_mount_leaks: None) -> None:
    build = tmp_path / "build"
    build.mkdir()
    archive = usr_merged_base(tmp_path / "base.tar")
    digest = sha256(archive.read_bytes())
    ref = ".acigen/fetch/base.ref"
    (build / ".acigen" / "fetch").mkdir(parents=True)
    run_helper("fetch", archive.as_uri(), "--sha256", digest, "--cache-dir",
               str(tmp_path / "cache"), "--ref", ref, cwd=build, check=True)
    step = write_step(build, "01-base", [], {"ref": ref, "sha256": digest}, "overlay")
    result = run_step(build, *step)
    assert result.returncode == 0, result.stderr
    assert "unpacked base.tar (tar archive): 8 entries" in result.stdout
    # a damaged cache entry is caught before anything is unpacked
    cached = Path(json.loads((build / ref).read_text())["path"])
    cached.write_bytes(cached.read_bytes()[:-1024])
    broken = run_step(build, *step)
    assert broken.returncode == 1
    assert "cached copy" in error_lines(broken)[0] and digest in broken.stderr
    assert not (build / step[1]).exists()


def test_hostile_image_leaves_no_stamp(tmp_path: Path, no_mount_leaks: None) -> None:
    build = tmp_path / "build"
    build.mkdir()
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "secret").write_text("keep")
    before = describe(str(sentinel))
    (_, archive), = [(c, p) for c, p in build_corpus(build / "hostile", sentinel)
                     if c.name == "symlink-replaces-directory"]
    usr_merged_base(build / "base.tar")
    assert run_step(build, *write_step(build, "01-base", [], {"path": "base.tar"},
                                       "overlay")).returncode == 0
    step = write_step(build, "02-bad", ["01-base"], {"path": f"hostile/{archive.name}"},
                      "overlay")
    result = run_step(build, *step)
    assert result.returncode == 1
    assert "member 'etc/passwd': written through 'etc'" in error_lines(result)[0]
    assert not (build / step[1]).exists()
    assert describe(str(sentinel)) == before


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_interrupted_unpack_leaves_nothing_running(tmp_path: Path, compression: str,
                                                   no_mount_leaks: None) -> None:
    """SIGTERM mid-archive: exit 130, no stamp, no decompressor, no mount.
    (gzip is inflated by a thread of the helper, zstd by a child process.)"""
    build = tmp_path / "build"
    build.mkdir()
    plain = make_tar(tmp_path / "big.tar", [
        ("first", "file", "x"), ("big", "file", os.urandom(4 << 20)),
    ])
    program = {"gzip": ["gzip", "-c"], "zstd": ["zstd", "-q", "-c"]}[compression]
    data = subprocess.run([*program, str(plain)], capture_output=True, check=True).stdout
    fifo = build / "slow.archive"
    os.mkfifo(fifo)
    step_file, stamp = write_step(build, "01-slow", [], {"path": "slow.archive"}, "overlay")
    (build / ".acigen" / "stamps").mkdir(parents=True)
    with subprocess.Popen(
            [sys.executable, "-m", "acigen.helpers.unpack", "--step", step_file, "--stamp",
             stamp], cwd=build, env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc, \
            open(fifo, "wb") as writer:
        writer.write(data[: len(data) // 2])
        writer.flush()
        layer = build / ".acigen" / "layers" / "01-slow" / "tree"
        deadline = time.monotonic() + 30
        while not (layer / "first").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "no progress"
            time.sleep(0.05)
        children = _children(proc.pid)
        assert bool(children) == (compression == "zstd"), children
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().endswith("acigen-unpack: interrupted")
    assert not (build / stamp).exists()
    for child in children:
        assert not Path(f"/proc/{child}").exists(), f"process {child} was left running"


def test_max_size_stops_a_decompression_bomb(tmp_path: Path, no_mount_leaks: None) -> None:
    """64 KiB of gzip holding 64 MiB: the step stops at its max_size, naming
    the member, and leaves no stamp."""
    build = tmp_path / "build"
    build.mkdir()
    make_tar(build / "bomb.tar.gz", [("etc", "dir", ""), ("etc/small", "file", "ok"),
                                      ("bomb", "file", bytes(64 << 20))], gzip=True)
    assert (build / "bomb.tar.gz").stat().st_size < 128 << 10
    step = write_step(build, "01-bomb", [], {"path": "bomb.tar.gz", "max_size": 1 << 20},
                      "copy")
    result = run_step(build, *step)
    assert result.returncode == 1
    assert "member 'bomb': the archive holds more than max_size (1048576 bytes" \
        in error_lines(result)[0]
    assert not (build / step[1]).exists()
    fine = write_step(build, "01-fine", [], {"path": "bomb.tar.gz", "max_size": 65 << 20},
                      "copy")
    assert run_step(build, *fine).returncode == 0
