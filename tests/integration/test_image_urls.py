"""Image steps from URLs through acigen + ninja: downloads in parallel under a
pool, and a Debian root served over HTTP packed as it was in its tarball."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from tests.support.build import acigen, is_noop, run_ninja
from tests.support.busybox import busybox_tar, shell, write_manifest
from tests.support.httpserver import FileServer, Resource
from tests.support.rootfs import debian_minbase_tarball
from tests.support.tools import validate_aci


@pytest.mark.parametrize(("jobs", "at_once"), [(4, 2), (1, 1)])
def test_two_image_urls_download_at_once_within_the_pool(tmp_path: Path, jobs: int,
                                                          at_once: int) -> None:
    body = busybox_tar()
    with FileServer() as server:
        # slow enough (~2 s each) that two downloads must overlap to be seen doing so
        urls = [server.add(f"/{n}.tar", Resource(body, rate=len(body) // 2)) for n in "ab"]
        write_manifest(tmp_path / "app.json", [
            {"type": "image", "url": urls[0]}, {"type": "image", "url": urls[1]},
            shell("test -x /bin/busybox")])
        acigen(tmp_path, "--cache-dir", str(tmp_path / "cache"), "--jobs-fetch", str(jobs),
               "app.json")
        run_ninja(tmp_path, "-j4")
        assert server.max_active == at_once
        assert len(server.requests) == 2
    validate_aci(tmp_path / "app.aci")


def members(archive: Path) -> dict[str, tuple]:
    """name -> (type, mode, uid, gid, link target, size) of every member; a hard
    link's target is named like members, without the archive's prefix."""
    def plain(name: str) -> str:
        return name.removeprefix("./").removeprefix("rootfs/").rstrip("/")
    out = {}
    with tarfile.open(archive) as tar:
        for m in tar:
            target = plain(m.linkname) if m.islnk() else m.linkname
            out[m.name.removeprefix("./").rstrip("/")] = (
                m.type, m.mode, m.uid, m.gid, target, m.size if m.isfile() else 0)
    return out


@pytest.mark.slow
def test_debian_root_over_http_packs_as_its_tarball(tmp_path: Path) -> None:
    tarball = debian_minbase_tarball()
    body = tarball.read_bytes()
    with FileServer() as server:
        url = server.add("/bookworm.tar", Resource(body))
        write_manifest(tmp_path / "debian.json", [
            {"type": "image", "url": url, "sha256": hashlib.sha256(body).hexdigest(),
             "devices": True}])
        acigen(tmp_path, "--cache-dir", str(tmp_path / "cache"), "debian.json")
        run_ninja(tmp_path)
        assert is_noop(tmp_path)
    image = tmp_path / "debian.aci"
    validate_aci(image)
    expected = members(tarball)
    packed = members(image)
    assert packed["rootfs"] == expected.pop(".")  # the tarball's "." is rootfs/
    got = {name.removeprefix("rootfs/"): info for name, info in packed.items()
           if name.startswith("rootfs/")}
    assert sorted(got) == sorted(expected)
    differ = [name for name in expected if got[name] != expected[name]]
    assert not differ, [(n, expected[n], got[n]) for n in differ[:5]]
