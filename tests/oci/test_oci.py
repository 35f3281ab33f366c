"""The OCI helper on real layers: what skopeo, umoci and runc make of it.

Each test runs for layers built in overlay mode (upper dirs with whiteout
devices and opaque xattrs) and in copy mode (full snapshots, diffed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.oci.conftest import HELLO
from tests.oci.imaging import build_aci, build_oci, helper, image_file

EXPECTED_APP_OUTPUT = ("changed\nnew\n/etc/gone absent\n/var/deldir absent\n"
                       "/var/deldir/child absent\n/usr/share/added present\n0\n0\n")


def skopeo_inspect(ref: str, raw: bool = False) -> dict:
    cmd = ["skopeo", "inspect", *(["--raw"] if raw else []), ref]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def umoci_bundle(archive: Path, work: Path, tag: str = "1.0.0") -> Path:
    """skopeo copy the oci-archive to an OCI layout, then umoci unpack it."""
    work.mkdir(parents=True, exist_ok=True)
    layout = work / "layout"
    subprocess.run(["skopeo", "copy", "-q", f"oci-archive:{archive}", f"oci:{layout}:{tag}"],
                   check=True)
    bundle = work / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)], check=True,
                   capture_output=True)
    return bundle


def runc_run(bundle: Path) -> subprocess.CompletedProcess[str]:
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    name = "acigen-oci-test-" + uuid.uuid4().hex[:8]
    try:
        return subprocess.run(["runc", "run", "--bundle", str(bundle), name],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=60)
    finally:
        subprocess.run(["runc", "delete", "--force", name], capture_output=True)


def acigen_run(aci: Path, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acigen.helpers.run", str(aci), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=env, timeout=120)


@pytest.fixture
def image(tmp_path: Path, three_layers) -> Path:
    mode, layer_dirs = three_layers
    return image_file(tmp_path / "hello.json", HELLO, layer_dirs, mode)


def test_skopeo_and_umoci_read_it_and_runc_runs_it_like_acigen_run(
        image: Path, tmp_path: Path, three_layers, no_mount_leaks) -> None:
    archive = tmp_path / "hello.oci.tar"
    summary = build_oci(image, archive)
    digest = re.search(r"manifest (sha256:[0-9a-f]{64})", summary).group(1)
    info = skopeo_inspect(f"oci-archive:{archive}")
    assert info["Digest"] == digest
    assert len(info["Layers"]) == 3  # one per build step
    assert (info["Architecture"], info["Os"], info["Created"]) == \
        ("amd64", "linux", "2020-09-13T12:26:40Z")  # from SOURCE_DATE_EPOCH
    bundle = umoci_bundle(archive, tmp_path)
    oci_result = runc_run(bundle)
    assert (oci_result.returncode, oci_result.stdout) == (3, EXPECTED_APP_OUTPUT), \
        oci_result.stderr
    # the same layers packed as an ACI and run by acigen run behave the same
    aci = tmp_path / "hello.aci"
    build_aci(image, aci)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    aci_result = acigen_run(aci, env=env)
    assert (aci_result.returncode, aci_result.stdout) == (3, EXPECTED_APP_OUTPUT), \
        aci_result.stderr


def test_deleted_files_and_opaque_dirs_are_gone_after_umoci_unpack(
        image: Path, tmp_path: Path) -> None:
    archive = tmp_path / "hello.oci.tar"
    build_oci(image, archive)
    rootfs = umoci_bundle(archive, tmp_path) / "rootfs"
    assert not (rootfs / "etc" / "gone").exists()
    assert not (rootfs / "var" / "deldir").exists()
    assert sorted(os.listdir(rootfs / "var" / "opaque")) == ["new"]  # old1, old2 hidden
    assert (rootfs / "etc" / "changed").read_text() == "changed\n"
    assert os.stat(rootfs / "bin" / "app.sh").st_ino == \
        os.stat(rootfs / "bin" / "app-link.sh").st_ino  # a hard link stays one
    assert not list(rootfs.rglob(".wh.*"))


def test_layer_tars_say_deletions_as_oci_whiteouts(image: Path, tmp_path: Path) -> None:
    archive = tmp_path / "hello.oci.tar"
    build_oci(image, archive)
    with tarfile.open(archive) as outer:
        index = json.load(outer.extractfile("index.json"))
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(outer.extractfile(f"blobs/sha256/{manifest_digest}"))
        second = manifest["layers"][1]["digest"].split(":")[1]
        with tarfile.open(fileobj=outer.extractfile(f"blobs/sha256/{second}")) as layer:
            names = layer.getnames()
    assert "etc/.wh.gone" in names
    assert "var/.wh.deldir" in names
    assert not any(name.startswith("var/deldir/") for name in names)
    assert "var/opaque/new" in names
    # overlay mode says "replaced" with an opaque marker; copy mode with
    # whiteouts of what disappeared: both hide old1 and old2
    assert "var/opaque/.wh..wh..opq" in names or \
        {"var/opaque/.wh.old1", "var/opaque/.wh.old2"} <= set(names)


def test_same_inputs_same_manifest_digest(image: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.oci.tar", tmp_path / "b.oci.tar"
    build_oci(image, first)
    (tmp_path / "chunks").rename(tmp_path / "chunks-old")  # a clean build, no cache
    build_oci(image, second)
    assert first.read_bytes() == second.read_bytes()
    assert skopeo_inspect(f"oci-archive:{first}")["Digest"] == \
        skopeo_inspect(f"oci-archive:{second}")["Digest"]


def test_squash_gives_one_layer_of_the_same_tree(image: Path, tmp_path: Path,
                                                 no_mount_leaks) -> None:
    archive = tmp_path / "hello.oci.tar"
    build_oci(image, archive, "--squash")
    assert len(skopeo_inspect(f"oci-archive:{archive}")["Layers"]) == 1
    result = runc_run(umoci_bundle(archive, tmp_path))
    assert (result.returncode, result.stdout) == (3, EXPECTED_APP_OUTPUT), result.stderr


def test_docker_archive_holds_the_same_image(image: Path, tmp_path: Path) -> None:
    archive, docker = tmp_path / "hello.oci.tar", tmp_path / "hello.docker.tar"
    build_oci(image, archive, "--docker-archive", str(docker))
    with tarfile.open(docker) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]
    assert entry["RepoTags"] == ["example.com/hello:1.0.0"]
    assert len(entry["Layers"]) == 3
    oci_config = skopeo_inspect(f"oci-archive:{archive}", raw=False)
    docker_config = skopeo_inspect(f"docker-archive:{docker}")
    assert docker_config["Env"] == oci_config["Env"]
    layout = tmp_path / "from-docker"
    subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{docker}",
                    f"oci:{layout}:1.0.0"], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1.0.0",
                    str(tmp_path / "docker-bundle")], check=True, capture_output=True)
    result = runc_run(tmp_path / "docker-bundle")
    assert (result.returncode, result.stdout) == (3, EXPECTED_APP_OUTPUT), result.stderr


def test_zstd_layers(image: Path, tmp_path: Path) -> None:
    spec = json.loads(image.read_text())
    spec["oci_compression"] = "zstd"
    image.write_text(json.dumps(spec))
    archive, docker = tmp_path / "hello.oci.tar", tmp_path / "hello.docker.tar"
    build_oci(image, archive, "--docker-archive", str(docker))
    raw = skopeo_inspect(f"oci-archive:{archive}", raw=True)
    assert {layer["mediaType"] for layer in raw["layers"]} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config",
                                        f"oci-archive:{archive}"],
                                       capture_output=True, text=True, check=True).stdout)
    with tarfile.open(archive) as outer:
        for layer, diff_id in zip(raw["layers"], config["rootfs"]["diff_ids"], strict=True):
            blob = outer.extractfile("blobs/sha256/" + layer["digest"].split(":")[1]).read()
            plain = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True,
                                   check=True).stdout
            assert subprocess.run(["sha256sum"], input=plain, capture_output=True,
                                  check=True).stdout.split()[0].decode() == \
                diff_id.split(":")[1]
    # the docker archive gets gzip layers, which every docker loads
    with tarfile.open(docker) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]
        first = tar.extractfile(entry["Layers"][0]).read(2)
    assert first == b"\x1f\x8b"


def test_bad_image_file_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"manifest": HELLO, "layers": []}))
    out = tmp_path / "x.oci.tar"
    result = helper("oci", "--image", str(bad), "--out", str(out), check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"acigen-oci: error: {bad}: layers: expected a non-empty list of directories"]
    assert not out.exists()
    missing = image_file(tmp_path / "missing.json", HELLO, [tmp_path / "nolayer"], "overlay")
    result = helper("oci", "--image", str(missing), "--out", str(out), check=False)
    assert result.returncode == 1
    assert "nolayer is missing" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".x.oci.tar.tmp-*"))


def test_by_hand_from_a_directory(tmp_path: Path, busybox: Path) -> None:
    manifest_file = tmp_path / "m.json"
    manifest_file.write_text(json.dumps(HELLO))
    out = tmp_path / "by-hand.oci.tar"
    result = helper("oci", "--manifest", str(manifest_file), "--rootfs", str(busybox),
                    "-o", str(out), "--source-date-epoch", "0")
    assert "1 layer " in result.stdout
    info = skopeo_inspect(f"oci-archive:{out}")
    assert info["Created"] == "1970-01-01T00:00:00Z"
