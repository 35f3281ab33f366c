"""A registry on 127.0.0.1 (Debian's docker-registry) and a tiny image pushed
to it: busybox, then a layer, then a layer of whiteouts and an opaque dir.
The registry tests build with real mounts, chroots and runc: they run as root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registry.ocimake import Entry, archive, layer_tar, oci_layout, tree_layer
from tests.support.privilege import skip_unless_root
from tests.support.registry import Registry, push_archive, running_registry
from tests.support.rootfs import busybox_tree

STEPS = "-aci-packer-build-steps-"
CONFIG = {"Env": ["PATH=/usr/bin:/bin", "GREETING=hello"], "Entrypoint": ["echo"],
          "Cmd": ["from", "the", "base"], "WorkingDir": "/opq", "User": "0:0",
          "ExposedPorts": {"8080/tcp": {}}}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test here needs root: skip before any fixture runs."""
    skip_unless_root()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("secure"), auth=True) as running:
        yield running


@dataclass(frozen=True)
class Tiny:
    archive: Path       # the oci-archive pushed
    layout: Path        # the same image as an OCI layout directory
    digest: str         # its manifest digest


def tiny_layers(tree: Path) -> list[bytes]:
    return [
        tree_layer(tree),
        layer_tar([Entry("etc/", None), Entry("etc/a", b"a"), Entry("etc/b", b"b"),
                   Entry("opq/", None), Entry("opq/old", b"o"), Entry("gone/", None),
                   Entry("gone/deep", b"d")]),
        layer_tar([Entry("etc/.wh.a"), Entry(".wh.gone"), Entry("opq/", None),
                   Entry("opq/.wh..wh..opq"), Entry("opq/new", b"n")]),
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    work = tmp_path_factory.mktemp("tiny")
    layers = tiny_layers(busybox_tree(work / "tree"))
    digest = oci_layout(work / "layout", layers, CONFIG)
    return Tiny(archive(work / "layout", work / "tiny.oci.tar"), work / "layout", digest)


def push(registry: Registry, image: Tiny | Path, name: str) -> str:
    return push_archive(registry, image.archive if isinstance(image, Tiny) else image, name)


def write_manifest(work: Path, oci: str, name: str = "t", app: dict | None = None,
                   extra_steps: list | None = None) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    doc: dict = {"name": f"example.com/{name}",
                 STEPS: [{"type": "image", "oci": oci}, *(extra_steps or [])]}
    if app is not None:
        doc["app"] = app
    path = work / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def build(work: Path, *args: str, manifest: str = "t.json",
          cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    """acigen -b in WORK (a build file of its own), with CACHE as the download cache."""
    cache_args = ["--cache-dir", str(cache)] if cache else []
    return subprocess.run([sys.executable, "-m", "acigen", *cache_args, *args, "-b", manifest],
                          cwd=work, capture_output=True, text=True)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines that say what failed ("...: error: ..." and "hint:")."""
    assert result.returncode != 0, result.stdout
    text = result.stdout + result.stderr
    return [line for line in text.splitlines() if ": error: " in line]


def rootfs_names(aci: Path) -> set[str]:
    with tarfile.open(aci) as tar:
        return {m.name.removeprefix("rootfs/") for m in tar.getmembers()
                if m.name.startswith("rootfs/")}


def image_manifest(aci: Path) -> dict:
    with tarfile.open(aci) as tar:
        member = tar.extractfile("manifest")
        assert member is not None
        return json.loads(member.read())


def cached_blobs(cache: Path) -> list[str]:
    folder = cache / "fetch" / "sha256"
    return sorted(os.listdir(folder)) if folder.exists() else []
