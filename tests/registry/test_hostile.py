"""Hostile layers and indexes: one line, nothing written outside the root."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.registry.conftest import build, error_lines, ok, rootfs_names, write_manifest
from tests.registry.ocimake import Entry, layer_tar, multi_arch_layout, oci_layout
from tests.support.registry import Registry


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A directory on the host a hostile layer aims at, with a file to delete."""
    target = Path("/tmp") / f"acigen-hostile-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    (target / "victim").write_text("host\n")
    yield target
    subprocess.run(["rm", "-rf", str(target)], check=True)


def build_layers(work: Path, layers: list[list[Entry]]) -> subprocess.CompletedProcess[str]:
    oci_layout(work / "layout", [layer_tar(entries) for entries in layers])
    write_manifest(work, "oci:layout")
    return build(work)


@pytest.mark.parametrize(("layers", "message"), [
    ([[Entry("../escape", b"x")]], "member '../escape': its path '../escape' leaves the root"),
    ([[Entry("etc/", None), Entry("etc/.wh...")]], "a whiteout of '..' names no entry"),
    ([[Entry("../.wh.etc")]], "member '../.wh.etc': its path '../.wh.etc' leaves the root"),
    ([[Entry("link", link="HOST"), Entry("link/pwned", b"x")]],
     "written through 'link', a symlink this archive created"),
], ids=["dotdot", "whiteout-dotdot", "whiteout-above", "symlink-out"])
def test_hostile_layer_is_one_line(tmp_path: Path, host_dir: Path, layers: list,
                                   message: str) -> None:
    layers = [[Entry(e.name, e.data, str(host_dir) if e.link == "HOST" else e.link)
               for e in entries] for entries in layers]
    lines = error_lines(build_layers(tmp_path, layers))
    assert len(lines) == 1 and message in lines[0], lines
    assert sorted(p.name for p in host_dir.iterdir()) == ["victim"]
    assert not (tmp_path.parent / "escape").exists()


def test_lower_layers_symlinks_stay_inside_the_root(tmp_path: Path, host_dir: Path) -> None:
    """A link to a host path made by one layer, written through or whited out
    through by the next: both land inside the image."""
    layers = [[Entry("link", link=str(host_dir)), Entry(str(host_dir) + "/", None),
               Entry(str(host_dir).lstrip("/") + "/victim", b"image\n"),
               Entry("/absolute", b"abs\n")],
              [Entry("link/pwned", b"x"), Entry("link/.wh.victim")]]
    ok(build_layers(tmp_path, layers))
    names = rootfs_names(tmp_path / "t.aci")
    inside = str(host_dir).lstrip("/")
    assert {f"{inside}/pwned", "absolute", "link"} <= names
    assert f"{inside}/victim" not in names
    assert (host_dir / "victim").read_text() == "host\n"
    assert not (host_dir / "pwned").exists()


def test_index_resolved_to_the_manifests_arch(tmp_path: Path, registry: Registry) -> None:
    layout = tmp_path / "multi"
    multi_arch_layout(layout, {("linux", "amd64"): [layer_tar([Entry("arch", b"amd64")])],
                               ("linux", "arm64"): [layer_tar([Entry("arch", b"arm64")])]})
    subprocess.run(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false",
                    f"oci:{layout}:1", registry.ref("multi:1")], check=True)
    for arch, expected in (("amd64", "amd64"), ("aarch64", "arm64")):
        work = tmp_path / arch
        write_manifest(work, registry.ref("multi:1"))
        doc = (work / "t.json").read_text().replace(
            '"name": "example.com/t",',
            f'"name": "example.com/t", "labels": [{{"name": "os", "value": "linux"}}, '
            f'{{"name": "arch", "value": "{arch}"}}],')
        (work / "t.json").write_text(doc)
        ok(build(work, "--tls-verify", "false", cache=tmp_path / "cache"))
        import tarfile
        with tarfile.open(work / "t.aci") as tar:
            member = tar.extractfile("rootfs/arch")
            assert member is not None and member.read().decode() == expected
    work = tmp_path / "s390x"
    write_manifest(work, registry.ref("multi:1"))
    (work / "t.json").write_text((work / "t.json").read_text().replace(
        '"name": "example.com/t",', '"name": "example.com/t", "labels": [{"name": "os", '
        '"value": "linux"}, {"name": "arch", "value": "s390x"}],'))
    lines = error_lines(build(work, "--tls-verify", "false", cache=tmp_path / "cache"))
    assert len(lines) == 1 and "no image for linux/s390x (it has linux/amd64, linux/arm64)" \
        in lines[0], lines
