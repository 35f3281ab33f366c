"""The nginx example on a Debian root pulled from a registry, serving 200.

The bookworm minbase root (debootstrap, cached by the tests) becomes an OCI
archive by acigen's own --oci, skopeo pushes it to a registry on 127.0.0.1 as
debian:bookworm, and examples/nginx/nginx.json, its first step replaced by
`"oci": "docker://HOST/debian:bookworm"`, is built from it: by tag (the digest
recorded in the lock file), then pinned by that digest, offline, from the
cache the first build filled.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.integration.test_nginx import EXAMPLE, on_port
from tests.registry.conftest import STEPS, build, ok
from tests.support import runc
from tests.support.net import free_port, http_get
from tests.support.registry import push_archive, running_registry
from tests.support.rootfs import debian_minbase_tarball
from tests.support.tools import validate_aci

pytestmark = pytest.mark.slow
PLAIN = ("--tls-verify", "false")


def debian_oci_archive(work: Path) -> Path:
    """bookworm minbase as an OCI archive, by acigen --oci (uncompressed: quick)."""
    work.mkdir(parents=True)
    shutil.copyfile(debian_minbase_tarball(), work / "bookworm-minbase.tar")
    doc = {"name": "example.com/debian", "labels": [{"name": "version", "value": "bookworm"}],
           STEPS: [{"type": "image", "path": "bookworm-minbase.tar", "devices": "skip"}]}
    (work / "debian.json").write_text(json.dumps(doc))
    ok(build(work, "-C", "none", "--oci", "debian.oci.tar", manifest="debian.json"))
    return work / "debian.oci.tar"


def nginx_manifest(work: Path, base: str, port: int) -> None:
    doc = json.loads((EXAMPLE / "nginx.json").read_text())
    assert doc[STEPS][0]["path"] == "bookworm-minbase.tar"
    doc[STEPS][0] = {"type": "image", "oci": base, "devices": "skip"}
    doc[STEPS].append(on_port(port))
    work.mkdir(parents=True, exist_ok=True)
    (work / "nginx.json").write_text(json.dumps(doc, indent=2))


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    work = tmp_path_factory.mktemp("registry-nginx")
    archive = debian_oci_archive(work / "debian")
    with running_registry(work) as registry:
        digest = push_archive(registry, archive, "debian:bookworm")
        yield SimpleNamespace(work=work, registry=registry, digest=digest,
                              cache=work / "cache")


def serves_200(aci: Path, port: int, tmp_path: Path) -> None:
    validate_aci(aci)
    with runc.running(aci, tmp_path, net_host=True, capabilities=runc.EXECUTOR_CAPS):
        assert http_get(f"http://127.0.0.1:{port}/")[0] == 200


def test_by_tag_serves_200_and_records_the_digest(debian: SimpleNamespace,
                                                  tmp_path: Path) -> None:
    work, port = debian.work / "by-tag", free_port()
    nginx_manifest(work, debian.registry.ref("debian:bookworm"), port)
    out = ok(build(work, *PLAIN, manifest="nginx.json", cache=debian.cache))
    assert "recorded in nginx.lock.json" in out
    lock = json.loads((work / "nginx.lock.json").read_text())
    assert lock["urls"][debian.registry.ref("debian:bookworm")]["sha256"] == \
        debian.digest.split(":")[1]
    serves_200(work / "nginx.aci", port, tmp_path)


def test_pinned_offline_from_the_cache_serves_200(debian: SimpleNamespace,
                                                  tmp_path: Path) -> None:
    work, port = debian.work / "pinned", free_port()
    if not (debian.cache / "fetch").exists():  # run alone: fill the cache first
        test_by_tag_serves_200_and_records_the_digest(debian, tmp_path / "first")
    before = len(debian.registry.requests())
    nginx_manifest(work, debian.registry.ref(f"debian@{debian.digest}"), port)
    ok(build(work, *PLAIN, "--offline", manifest="nginx.json", cache=debian.cache))
    assert len(debian.registry.requests()) == before
    serves_200(work / "nginx.aci", port, tmp_path)


def test_second_machine_pulls_the_nginx_layers(debian: SimpleNamespace,
                                               tmp_path: Path) -> None:
    """--cache-repo: two build directories, each with an empty download cache,
    build the nginx example; the second runs no cmd step, makes the same
    bytes, and takes a fraction of the first's time (printed)."""
    import time
    port = free_port()
    repo = ("--cache-repo", debian.registry.ref("nginx-layers"))
    times, images = [], []
    for name in ("machine-one", "machine-two"):
        work = debian.work / name
        nginx_manifest(work, debian.registry.ref(f"debian@{debian.digest}"), port)
        started = time.monotonic()
        out = ok(build(work, *PLAIN, *repo, manifest="nginx.json", cache=work / "cache"))
        times.append(time.monotonic() - started)
        images.append(work / "nginx.aci")
        cmd_steps = 5  # apt-get update, install, clean, rm lists, the port edit
        word = "pushed to" if name == "machine-one" else "pulled from"
        assert out.count(f"{word} the layer cache") == cmd_steps, out
    assert images[0].read_bytes() == images[1].read_bytes()
    print(f"\nnginx with --cache-repo: first machine {times[0]:.1f} s, second "
          f"{times[1]:.1f} s ({times[1] / times[0]:.2f}x)")
    serves_200(images[1], port, tmp_path)
