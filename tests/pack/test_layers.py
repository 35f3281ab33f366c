"""acigen-pack as ninja runs it: an image file, layers merged by overlayfs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.pack.run import SUMMARY, decompress, image_id_of, pack
from tests.pack.trees import MANIFEST, describe, extract, text
from tests.support.tools import ninja, validate_aci

pytestmark = pytest.mark.usefixtures("no_mount_leaks")

BASE = ".acigen/layers/01-base"
TOP = ".acigen/layers/02-top"


def put(path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, *owner)
    os.chmod(path, mode)


def make_layers(build: Path) -> None:
    """Two layers as steps leave them: the top one deletes, replaces, adds."""
    base, top = build / BASE / "tree", build / TOP / "tree"
    put(base / "etc/a", b"deleted above")
    put(base / "etc/b", b"kept")
    put(base / "opt/old/x", b"hidden by an opaque directory")
    put(base / "opt/old/sub/y", b"hidden too")
    put(base / "usr/bin/tool", b"version 1", 0o755)
    put(base / "big/file", text(3, 3 << 20))
    (top / "etc").mkdir(parents=True)
    os.mknod(top / "etc/a", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs whiteout
    put(top / "etc/c", b"added", 0o600, (1000, 1000))
    (top / "opt/old").mkdir(parents=True)
    os.setxattr(top / "opt/old", "trusted.overlay.opaque", b"y")
    put(top / "opt/old/new", b"the directory's only entry now")
    put(top / "usr/bin/tool", b"version 2", 0o755)
    os.setxattr(top / "usr/bin/tool", "user.rebuilt", b"yes")


def expected_tree(dest: Path) -> Path:
    """The merged view, made by hand."""
    put(dest / "etc/b", b"kept")
    put(dest / "etc/c", b"added", 0o600, (1000, 1000))
    put(dest / "opt/old/new", b"the directory's only entry now")
    put(dest / "usr/bin/tool", b"version 2", 0o755)
    os.setxattr(dest / "usr/bin/tool", "user.rebuilt", b"yes")
    put(dest / "big/file", text(3, 3 << 20))
    return dest


def image_file(build: Path, name: str = "img", **options: object) -> Path:
    spec = {"acigen": "0.1.0", "manifest": {**MANIFEST, "-aci-packer-build-steps-": []},
            "layers": [TOP, BASE], "layer_mode": "auto", "compression": "gzip",
            "source_date_epoch": 0, "chunk_cache": ".acigen/chunks", **options}
    path = build / ".acigen/images" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def build(tmp_path: Path) -> Path:
    make_layers(tmp_path / "build")
    return tmp_path / "build"


@pytest.mark.parametrize("compression", ["gzip", "xz"])
def test_the_image_shows_the_merged_view(compression: str, build: Path, tmp_path: Path) -> None:
    image_file(build, compression=compression, chunk_size=1 << 20)
    result = pack("--image", ".acigen/images/img.json", "--out", "img.aci", cwd=build)
    match = SUMMARY.match(result.stdout.strip())
    assert match and match["name"] == "img.aci", result.stdout
    validate_aci(build / "img.aci")
    assert image_id_of(decompress(build / "img.aci")) == match["id"]
    assert (build / "img.aci.id").read_text().strip() == match["id"]
    got, _ = describe(extract(build / "img.aci", tmp_path / "x") / "rootfs")
    want, _ = describe(expected_tree(tmp_path / "want"), 0)
    assert set(got) == set(want)
    for path in want:
        if path:  # the roots' own modes differ (mkdtemp), everything else must not
            assert got[path] == want[path], path
    assert b"etc/a" not in got and b"opt/old/x" not in got
    with tarfile.open(build / "img.aci") as tar:
        manifest = json.load(tar.extractfile("manifest"))  # type: ignore[arg-type]
        headers = [m.pax_headers for m in tar.getmembers()]
    assert manifest == MANIFEST  # the build steps are not part of the image
    assert not [h for h in headers if any("overlay" in key for key in h)]


def test_copy_mode_packs_the_nearest_layer_alone(build: Path, tmp_path: Path) -> None:
    """In copy mode each layer holds the whole root; no mount at all."""
    copy = build / ".acigen/layers/03-copy/tree"
    copy.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(expected_tree(tmp_path / "want")), str(copy)], check=True)
    image_file(build, layers=[".acigen/layers/03-copy", TOP, BASE], layer_mode="copy")
    pack("--image", ".acigen/images/img.json", "--out", "copy.aci", cwd=build)
    image_file(build)
    pack("--image", ".acigen/images/img.json", "--out", "overlay.aci", cwd=build)
    validate_aci(build / "copy.aci")
    validate_aci(build / "overlay.aci")
    got_copy, _ = describe(extract(build / "copy.aci", tmp_path / "c") / "rootfs")
    got_overlay, _ = describe(extract(build / "overlay.aci", tmp_path / "o") / "rootfs")
    del got_copy[b""], got_overlay[b""]
    assert got_copy == got_overlay


def test_ninja_builds_the_image_and_then_has_nothing_to_do(build: Path) -> None:
    image_file(build, chunk_size=1 << 20)
    (build / "build.ninja").write_text(
        f"rule acigen_pack\n"
        f"  command = {os.sys.executable} -m acigen.helpers.pack --image $in --out $out\n"
        f"  description = pack $out\n"
        f"build img.aci: acigen_pack .acigen/images/img.json\n"
        f"default img.aci\n")

    def run() -> str:
        result = subprocess.run([ninja()], cwd=build, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def summary(output: str) -> tuple[int, int]:
        [match] = [m for m in map(SUMMARY.match, output.splitlines()) if m]
        return int(match["chunks"]), int(match["reused"])

    chunks, reused = summary(run())
    assert chunks > 1 and reused == 0
    assert "no work to do" in run()
    validate_aci(build / "img.aci")
    before = (build / "img.aci").read_bytes()
    os.utime(build / ".acigen/images/img.json")
    assert summary(run()) == (chunks, chunks)  # every chunk came from the cache
    assert (build / "img.aci").read_bytes() == before


def test_a_missing_layer_is_an_error_before_anything_is_written(build: Path) -> None:
    image_file(build, layers=[".acigen/layers/09-gone", TOP, BASE])
    result = pack("--image", ".acigen/images/img.json", "--out", "img.aci", cwd=build,
                  check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == \
        "acigen-pack: error: layer .acigen/layers/09-gone is missing"
    assert not (build / "img.aci").exists()
    assert not (build / ".acigen/chunks").exists()
