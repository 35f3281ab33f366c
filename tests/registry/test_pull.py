"""The image step's `oci` field against a real registry on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.registry.conftest import (
    Tiny,
    build,
    cached_blobs,
    error_lines,
    ok,
    push,
    rootfs_names,
    write_manifest,
)
from tests.support.procs import pids_with
from tests.support.registry import Registry, running_registry

PLAIN = ("--tls-verify", "false")  # the plain registry speaks HTTP only


def test_fixture_stops_the_registry_and_leaves_nothing(tmp_path: Path) -> None:
    with running_registry(tmp_path / "r") as reg:
        config = str(tmp_path / "r" / "registry" / "config.yml")
        assert pids_with(config), "the registry is not running"
        assert reg.requests()
    assert not pids_with(config)
    assert not (tmp_path / "r" / "registry").exists()


def test_tag_pulled_whiteouts_applied_digest_locked(registry: Registry, tiny: Tiny,
                                                    tmp_path: Path) -> None:
    push(registry, tiny, "tiny:1")
    write_manifest(tmp_path, registry.ref("tiny:1"),
                   app={"exec": ["/bin/sh"], "user": "0", "group": "0"})
    out = ok(build(tmp_path, *PLAIN, cache=tmp_path / "cache"))
    assert "2 whiteouts" in out or "whiteouts" in out
    names = rootfs_names(tmp_path / "t.aci")
    assert {"bin/busybox", "etc/b", "opq/new"} <= names
    assert not {"etc/a", "opq/old", "gone", "gone/deep"} & names
    lock = json.loads((tmp_path / "t.lock.json").read_text())
    assert lock["urls"][registry.ref("tiny:1")] == {"sha256": tiny.digest.split(":")[1]}


def test_pinned_and_cached_makes_no_request(registry: Registry, tiny: Tiny,
                                            tmp_path: Path) -> None:
    push(registry, tiny, "tiny:1")
    pinned = registry.ref(f"tiny@{tiny.digest}")
    write_manifest(tmp_path / "a", pinned)
    ok(build(tmp_path / "a", *PLAIN, cache=tmp_path / "cache"))
    before = len(registry.requests())
    write_manifest(tmp_path / "b", pinned)
    ok(build(tmp_path / "b", *PLAIN, cache=tmp_path / "cache"))
    assert len(registry.requests()) == before
    assert not (tmp_path / "b" / "t.lock.json").exists()  # a pin needs no lock entry
    same = (tmp_path / "a" / "t.aci").read_bytes() == (tmp_path / "b" / "t.aci").read_bytes()
    assert same


def test_offline_builds_from_the_cache_and_only_from_it(registry: Registry, tiny: Tiny,
                                                        tmp_path: Path) -> None:
    push(registry, tiny, "tiny:1")
    write_manifest(tmp_path / "online", registry.ref("tiny:1"))
    ok(build(tmp_path / "online", *PLAIN, cache=tmp_path / "cache"))
    before = len(registry.requests())
    write_manifest(tmp_path / "offline", registry.ref("tiny:1"))
    ok(build(tmp_path / "offline", *PLAIN, "--offline", cache=tmp_path / "cache"))
    assert len(registry.requests()) == before
    write_manifest(tmp_path / "empty", registry.ref("tiny:1"))
    lines = error_lines(build(tmp_path / "empty", *PLAIN, "--offline",
                              cache=tmp_path / "empty-cache"))
    assert len(lines) == 1 and "is not in the download cache" in lines[0], lines
    assert len(registry.requests()) == before


def test_moved_tag_is_one_line_and_keeps_nothing(registry: Registry, tiny: Tiny,
                                                 tmp_path: Path) -> None:
    push(registry, tiny, "moving:1")
    write_manifest(tmp_path, registry.ref("moving:1"))
    cache = tmp_path / "cache"
    ok(build(tmp_path, *PLAIN, cache=cache))
    other = tmp_path / "other"
    from tests.registry.ocimake import Entry, archive, layer_tar, oci_layout
    oci_layout(other, [layer_tar([Entry("x", b"other")])])
    push(registry, archive(other, tmp_path / "other.tar"), "moving:1")
    blobs = cached_blobs(cache)
    shutil.rmtree(tmp_path / ".acigen" / "fetch")
    lines = error_lines(build(tmp_path, *PLAIN, cache=cache))
    assert len(lines) == 1 and "changed: t.lock.json records sha256" in lines[0], lines
    assert cached_blobs(cache) == blobs


def test_local_oci_archive_and_layout(tiny: Tiny, tmp_path: Path) -> None:
    for kind, path in (("oci-archive", tiny.archive), ("oci", tiny.layout)):
        work = tmp_path / kind
        write_manifest(work, f"{kind}:{path}")
        ok(build(work))
        names = rootfs_names(work / "t.aci")
        assert "etc/b" in names and "etc/a" not in names and "opq/old" not in names


def test_base_config_offered_where_the_manifest_says_nothing(tiny: Tiny,
                                                             tmp_path: Path) -> None:
    from tests.registry.conftest import image_manifest
    from tests.support.tools import validate_aci
    write_manifest(tmp_path / "none", f"oci:{tiny.layout}")
    out = ok(build(tmp_path / "none", "--oci", "t.oci.tar"))
    assert "t.aci: from the base image's config, where the manifest's app says nothing: " \
           "exec, environment, workingDirectory, ports, user, group" in out
    app = image_manifest(tmp_path / "none" / "t.aci")["app"]
    assert app["exec"] == ["/bin/echo", "from", "the", "base"]  # Cmd's echo found in PATH
    assert app["environment"] == [{"name": "PATH", "value": "/usr/bin:/bin"},
                                  {"name": "GREETING", "value": "hello"}]
    assert (app["workingDirectory"], app["user"], app["group"]) == ("/opq", "0", "0")
    assert app["ports"] == [{"name": "tcp-8080", "port": 8080, "protocol": "tcp"}]
    validate_aci(tmp_path / "none" / "t.aci")
    import subprocess
    oci = json.loads(subprocess.run(["skopeo", "inspect", "--config",
                                     f"oci-archive:{tmp_path / 'none' / 't.oci.tar'}"],
                                    check=True, capture_output=True, text=True).stdout)
    assert oci["config"]["Entrypoint"] == ["/bin/echo", "from", "the", "base"]

    own = {"exec": ["/bin/sh"], "user": "0", "group": "0", "workingDirectory": "/etc"}
    write_manifest(tmp_path / "own", f"oci:{tiny.layout}", app=own)
    out = ok(build(tmp_path / "own"))
    assert "app says nothing: environment, ports" in out
    app = image_manifest(tmp_path / "own" / "t.aci")["app"]
    assert (app["exec"], app["workingDirectory"]) == (["/bin/sh"], "/etc")
    assert app["environment"][1] == {"name": "GREETING", "value": "hello"}
