"""An unpinned image URL through acigen + ninja: its digest is locked on the
first build, checked on later ones, and refreshed by deleting the entry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.build import acigen, is_noop, run_ninja
from tests.support.busybox import busybox_tar, image_file, shell, write_manifest
from tests.support.httpserver import FileServer, Resource


def test_lock_records_checks_and_refreshes(tmp_path: Path) -> None:
    with FileServer() as server:
        server.add("/base.tar", Resource(busybox_tar(), etag='"v1"'))
        write_manifest(tmp_path / "app.json", [
            {"type": "image", "url": server.url("/base.tar")},
            shell("cat /etc/passwd > /copied")])
        cache = ["--cache-dir", str(tmp_path / "cache")]
        acigen(tmp_path, *cache, "app.json")
        first = run_ninja(tmp_path)
        lock = json.loads((tmp_path / "app.lock.json").read_text())
        (digest,) = [entry["sha256"] for entry in lock["urls"].values()]
        assert digest in first.stdout  # printed, as well as recorded

        # the lock was written during the first build: at most one conditional
        # request to settle, then nothing to do and no request at all
        run_ninja(tmp_path)
        requests = len(server.requests_for("/base.tar"))
        assert is_noop(tmp_path)
        assert len(server.requests_for("/base.tar")) == requests
        assert all("If-None-Match" in seen.headers
                   for seen in server.requests_for("/base.tar")[1:])

        # upstream changes; a fresh build (no build dir) sees it, and the lock
        # stops the build, naming both digests
        changed = busybox_tar() + b"\0" * 10240
        server.add("/base.tar", Resource(changed, etag='"v2"'))
        shutil.rmtree(tmp_path / ".acigen")
        acigen(tmp_path, *cache, "app.json")
        failed = run_ninja(tmp_path, check=False)
        assert failed.returncode != 0
        assert digest in failed.stdout
        assert image_file(tmp_path / "app.aci", "rootfs/copied")  # old image kept

        # accepting the new file: delete the entry, build again
        (tmp_path / "app.lock.json").write_text(json.dumps({"acigen-lock": 1, "urls": {}}))
        run_ninja(tmp_path)
        new = json.loads((tmp_path / "app.lock.json").read_text())
        assert [e["sha256"] for e in new["urls"].values()] != [digest]


def test_manifests_sharing_a_url_each_lock_it(tmp_path: Path) -> None:
    with FileServer() as server:
        url = server.add("/base.tar", Resource(busybox_tar(), etag='"v1"'))
        for name in ("one", "two"):
            write_manifest(tmp_path / f"{name}.json", [
                {"type": "image", "url": url}, shell(f"echo {name} > /name")])
        acigen(tmp_path, "--cache-dir", str(tmp_path / "cache"), "one.json", "two.json")
        run_ninja(tmp_path)
        assert len(server.requests_for("/base.tar")) == 1  # one download for both
        locks = [json.loads((tmp_path / f"{name}.lock.json").read_text())["urls"]
                 for name in ("one", "two")]
        assert locks[0] == locks[1] and list(locks[0]) == [url]
        # each manifest built on its own later is held to the same digest
        server.add("/base.tar", Resource(busybox_tar() + b"\0" * 10240, etag='"v2"'))
        shutil.rmtree(tmp_path / ".acigen")
        acigen(tmp_path, "--cache-dir", str(tmp_path / "cache"), "two.json")
        failed = run_ninja(tmp_path, check=False)
        assert failed.returncode != 0
        assert f"two.lock.json records sha256 {locks[1][url]['sha256']}" in failed.stdout
