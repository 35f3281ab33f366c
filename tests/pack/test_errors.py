"""Bad input: one clear line, nothing written.  Interrupted: nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pack.run import pack, pack_tree
from tests.pack.trees import MANIFEST, text_tree, write_manifest


def snapshot(top: Path) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            out.append((os.path.join(dirpath, name), st.st_size, st.st_mtime_ns))
    return sorted(out)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "tree" / "etc").mkdir(parents=True)
    (tmp_path / "tree" / "etc" / "hostname").write_text("box\n")
    write_manifest(tmp_path / "manifest.json")
    (tmp_path / "not-json.json").write_text("{\"acKind\": ")
    (tmp_path / "pod.json").write_text(json.dumps({**MANIFEST, "acKind": "PodManifest"}))
    (tmp_path / "nameless.json").write_text(json.dumps({**MANIFEST, "name": ""}))
    (tmp_path / "list.json").write_text("[]")
    return tmp_path


BY_HAND = [
    (["--manifest", "manifest.json", "--rootfs", "missing", "-o", "out/i.aci"],
     "acigen-pack: error: missing: not a directory"),
    (["--manifest", "manifest.json", "--rootfs", "manifest.json", "-o", "out/i.aci"],
     "acigen-pack: error: manifest.json: not a directory"),
    (["--manifest", "gone.json", "--rootfs", "tree", "-o", "out/i.aci"],
     "acigen-pack: error: gone.json: no such file"),
    (["--manifest", "not-json.json", "--rootfs", "tree", "-o", "out/i.aci"],
     "acigen-pack: error: not-json.json: not valid JSON: Expecting value: line 1 column 12 "
     "(char 11)"),
    (["--manifest", "pod.json", "--rootfs", "tree", "-o", "out/i.aci"],
     "acigen-pack: error: pod.json: acKind must be 'ImageManifest', got 'PodManifest'"),
    (["--manifest", "nameless.json", "--rootfs", "tree", "-o", "out/i.aci"],
     "acigen-pack: error: nameless.json: name must be a non-empty string"),
    (["--manifest", "list.json", "--rootfs", "tree", "-o", "out/i.aci"],
     "acigen-pack: error: list.json: expected a JSON object"),
    (["--manifest", "manifest.json", "--rootfs", "tree", "-o", "out/i.tar"],
     "acigen-pack: error: out/i.tar: an image's name must end in .aci (the appc spec says so)"),
    (["--manifest", "manifest.json", "--rootfs", "tree", "-o", "out/i.aci",
      "--source-date-epoch", "-5"],
     "acigen-pack: error: --source-date-epoch: expected seconds since 1970 (>= 0)"),
    (["--manifest", "manifest.json", "--rootfs", "tree", "-o", "out/i.aci", "-j", "0"],
     "acigen-pack: error: --jobs: expected at least 1"),
]


@pytest.mark.parametrize(("args", "error"), BY_HAND)
def test_bad_input_by_hand(args: list[str], error: str, work: Path) -> None:
    before = snapshot(work)
    result = pack(*args, "--chunk-cache", "cache", cwd=work, check=False)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [error]
    assert snapshot(work) == before
    assert not (work / "out").exists() and not (work / "cache").exists()


IMAGE_FILES = [
    ({"compression": "zstd"},
     "img.json: compression: expected one of none, gzip, bzip2, xz, got 'zstd'"),
    ({"layers": []}, "img.json: layers: expected a non-empty list of directories"),
    ({"layers": "base"}, "img.json: layers: expected a non-empty list of directories"),
    ({"source_date_epoch": "yesterday"},
     "img.json: source_date_epoch: expected an integer >= 0, got 'yesterday'"),
    ({"layer_mode": "fast"},
     "img.json: layer_mode: expected one of auto, overlay, fuse, copy, got 'fast'"),
    ({"manifest": {"name": "x"}},
     "img.json: manifest: acKind must be 'ImageManifest', got None"),
    ({"chunk_cache": 5}, "img.json: chunk_cache: expected a directory or null"),
]


@pytest.mark.parametrize(("change", "error"), IMAGE_FILES)
def test_bad_image_file(change: dict, error: str, work: Path) -> None:
    (work / "layers/base/tree").mkdir(parents=True)
    spec = {"acigen": "0.1.0", "manifest": MANIFEST, "layers": ["layers/base"],
            "layer_mode": "auto", "compression": "gzip", "source_date_epoch": 0,
            "chunk_cache": "cache", **change}
    (work / "img.json").write_text(json.dumps(spec))
    before = snapshot(work)
    result = pack("--image", "img.json", "--out", "i.aci", cwd=work, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"acigen-pack: error: {error}"]
    assert snapshot(work) == before
    assert not (work / "cache").exists() and not (work / "layers/mnt").exists()


def test_usage_errors_exit_2(work: Path) -> None:
    for args in (["-o", "i.aci"], ["--image", "x.json", "--rootfs", "tree", "-o", "i.aci"],
                 ["--manifest", "manifest.json", "--rootfs", "tree"]):
        result = pack(*args, cwd=work, check=False)
        assert result.returncode == 2, args
    assert sorted(os.listdir(work)) == ["list.json", "manifest.json", "nameless.json",
                                        "not-json.json", "pod.json", "tree"]


# -- interrupted --------------------------------------------------------------------

def start(work: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "acigen.helpers.pack", *args],
                            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_chunks(cache: Path, proc: subprocess.Popen[str]) -> None:
    """Until the pack is well under way: it has cached a chunk."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.is_dir() and any(p.suffix != "" and p.name[0] != "." for p in cache.iterdir()
                                  if p.name not in ("lock", "uses")):
            return
        time.sleep(0.02)
    raise AssertionError("the pack never got going" if proc.poll() is None else
                         f"the pack ended first: {proc.communicate()}")


def leftovers(*dirs: Path) -> list[str]:
    return [f"{d}/{name}" for d in dirs if d.is_dir() for name in os.listdir(d)
            if ".tmp-" in name]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_pack_keeps_the_old_image(sig: signal.Signals, work: Path) -> None:
    tree = text_tree(work / "big", files=60, size=400_000)
    old = pack_tree(work / "tree", work / "manifest.json", work / "out/i.aci")
    old_bytes = (work / "out/i.aci").read_bytes()
    proc = start(work, "--manifest", "manifest.json", "--rootfs", str(tree), "-o", "out/i.aci",
                 "-C", "xz", "--chunk-size", "1", "--chunk-cache", "cache")
    wait_for_chunks(work / "cache", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, "acigen-pack: interrupted\n")
    assert (work / "out/i.aci").read_bytes() == old_bytes
    assert (work / "out/i.aci.id").read_text() == old.image_id + "\n"
    assert sorted(os.listdir(work / "out")) == ["i.aci", "i.aci.id"]
    assert leftovers(work / "cache", work / "cache/uses") == []


@pytest.mark.usefixtures("no_mount_leaks")
def test_pack_stops_when_ninja_dies(work: Path) -> None:
    """Ninja killed: our stdout pipe breaks, the pack stops and cleans up."""
    text_tree(work / "layers/base/tree", files=60, size=400_000)
    (work / "layers/top/tree").mkdir(parents=True)
    spec = {"acigen": "0.1.0", "manifest": MANIFEST, "layers": ["layers/top", "layers/base"],
            "layer_mode": "overlay", "compression": "xz", "source_date_epoch": 0,
            "chunk_cache": "cache", "chunk_size": 1 << 20}
    (work / "img.json").write_text(json.dumps(spec))
    proc = start(work, "--image", "img.json", "--out", "i.aci")
    wait_for_chunks(work / "cache", proc)
    proc.stdout.close()  # type: ignore[union-attr]
    with proc.stderr:  # type: ignore[union-attr]
        err = proc.stderr.read()  # type: ignore[union-attr]
    assert proc.wait(timeout=60) == 130, err
    assert err == "acigen-pack: interrupted\n"
    assert not (work / "i.aci").exists()
    assert leftovers(work, work / "cache") == []


@pytest.mark.parametrize(("user", "group", "error"), [
    ("www", "0", "user 'www' is neither in the image's /etc/passwd nor a number"),
    ("0", "staff", "group 'staff' is neither in the image's /etc/group nor a number"),
    ("/srv/app", "0", "app user/group /srv/app: no such file in the image (No such file or "
                      "directory)"),
])
def test_an_app_identity_the_image_cannot_resolve_is_refused(
        user: str, group: str, error: str, work: Path) -> None:
    """What `acigen run` (or any appc executor) would fail on, found at build time."""
    write_manifest(work / "app.json", {**MANIFEST, "app": {
        "exec": ["/bin/sh"], "user": user, "group": group}})
    before = snapshot(work)
    result = pack("--manifest", "app.json", "--rootfs", "tree", "-o", "out/i.aci",
                  cwd=work, check=False)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[0] == f"acigen-pack: error: {error}"
    assert snapshot(work) == before


def test_root_without_passwd_packs_and_a_closed_root_warns(work: Path) -> None:
    """The original's bash image names "root" and has no /etc/passwd: root is 0."""
    write_manifest(work / "app.json", {**MANIFEST, "app": {
        "exec": ["/bin/sh"], "user": "root", "group": "root"}})
    open_tree = pack("--manifest", "app.json", "--rootfs", "tree", "-o", "out/i.aci", cwd=work)
    assert open_tree.stderr == ""
    (work / "tree").chmod(0o700)  # what `mktemp -d` gives a debootstrap
    closed = pack("--manifest", "app.json", "--rootfs", "tree", "-o", "out/i.aci", cwd=work)
    assert closed.stderr.splitlines() == [
        "acigen-pack: warning: the image's / has mode 0700: only its owner can reach any "
        "file in it (a server's unprivileged workers cannot); make the base's / 0755 "
        "(in a tarball, the mode of ./)"]
