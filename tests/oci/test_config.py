"""appc manifest -> OCI image config: the mapping, field by field."""

from __future__ import annotations

import pytest

from acigen.oci_config import (
    OciConfigError,
    annotations,
    check_oci,
    image_config,
    repository,
    tag,
)


def manifest(**extra: object) -> dict:
    doc = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/~me/web_app",
           "labels": [{"name": "version", "value": "1.2.3+build.4"},
                      {"name": "os", "value": "linux"}, {"name": "arch", "value": "aarch64"},
                      {"name": "tier", "value": "front"}],
           "app": {"exec": ["nginx", "-g", "daemon off;"], "user": "www-data", "group": "33",
                   "workingDirectory": "/srv",
                   "environment": [{"name": "MODE", "value": "prod"}],
                   "ports": [{"name": "http", "protocol": "tcp", "port": 80},
                             {"name": "range", "protocol": "UDP", "port": 5000, "count": 3},
                             {"name": "odd", "protocol": "quic", "port": 443}],
                   "mountPoints": [{"name": "data", "path": "/var/data"}],
                   "userLabels": {"team": "web"}}}
    doc.update(extra)
    return doc


def test_app_section_maps_to_the_run_config() -> None:
    config = image_config(manifest(), 86400, ["sha256:" + "a" * 64], ["step 1"])
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    assert config["created"] == "1970-01-02T00:00:00Z"
    run = config["config"]
    assert run["Entrypoint"] == ["nginx", "-g", "daemon off;"]
    assert "Cmd" not in run
    assert run["User"] == "www-data:33"
    assert run["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "MODE=prod"]
    assert run["WorkingDir"] == "/srv"
    assert run["ExposedPorts"] == {"80/tcp": {}, "5000/udp": {}, "5001/udp": {},
                                   "5002/udp": {}}
    assert run["Volumes"] == {"/var/data": {}}
    assert run["Labels"] == {"team": "web", "tier": "front", "version": "1.2.3+build.4"}
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}
    assert config["history"] == [{"created": "1970-01-02T00:00:00Z", "created_by": "step 1"}]


def test_platforms_use_go_names() -> None:
    def arch(value: str) -> tuple[str, str | None]:
        doc = manifest(labels=[{"name": "os", "value": "linux"},
                               {"name": "arch", "value": value}])
        config = image_config(doc, 0)
        return config["architecture"], config.get("variant")
    assert arch("amd64") == ("amd64", None)
    assert arch("i386") == ("386", None)
    assert arch("armv7l") == ("arm", "v7")
    assert arch("ppc64le") == ("ppc64le", None)


def test_a_manifest_without_arch_is_refused_at_generation_time() -> None:
    with pytest.raises(OciConfigError, match="lack arch"):
        check_oci(manifest(labels=[{"name": "os", "value": "linux"}]))


def test_what_oci_cannot_carry_is_reported() -> None:
    doc = manifest()
    doc["app"]["isolators"] = [{"name": "resource/memory", "value": {"limit": "1G"}}]
    doc["app"]["supplementaryGIDs"] = [5]
    assert check_oci(doc) == [
        "the OCI image config has no place for supplementaryGIDs",
        "the OCI image config has no place for isolator resource/memory",
        "the OCI image config has no place for port odd (quic)"]


def test_annotations_and_names() -> None:
    doc = manifest(annotations=[{"name": "authors", "value": "Ann"},
                                {"name": "homepage", "value": "https://example.com"},
                                {"name": "created", "value": "2020-01-01T00:00:00Z"}])
    assert annotations(doc, 0) == {
        "authors": "Ann", "created": "2020-01-01T00:00:00Z", "homepage": "https://example.com",
        "org.opencontainers.image.authors": "Ann",
        "org.opencontainers.image.created": "2020-01-01T00:00:00Z",
        "org.opencontainers.image.title": "example.com/~me/web_app",
        "org.opencontainers.image.url": "https://example.com",
        "org.opencontainers.image.version": "1.2.3+build.4"}
    assert tag(doc) == "1.2.3-build.4"  # '+' is not allowed in a docker tag
    assert repository(doc) == "example.com/me/web_app"  # nor '~' in a repository
    assert tag(manifest(labels=[])) == "latest"


def test_owner_of_a_file_needs_the_root() -> None:
    doc = manifest()
    doc["app"]["user"] = "/srv/data"
    with pytest.raises(OciConfigError, match="needs the image's root"):
        image_config(doc, 0)
    config = image_config(doc, 0, owner_of=lambda path: (101, 102))
    assert config["config"]["User"] == "101:33"
