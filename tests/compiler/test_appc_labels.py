"""The os/arch labels acigen adds: the host's, only when the manifest names neither."""

from __future__ import annotations

from acigen import appc

OS_LINUX = {"name": "os", "value": "linux"}


def names(labels: list[dict[str, str]]) -> list[str]:
    return [label["name"] for label in labels]


def test_neither_named_gets_the_hosts() -> None:
    labels = appc.image_manifest({"name": "a", "labels": [{"name": "version", "value": "1"}]})
    assert names(labels["labels"]) == ["version", *names(appc.host_labels())]


def test_os_alone_makes_an_architecture_independent_image() -> None:
    assert appc.image_manifest({"name": "a", "labels": [OS_LINUX]})["labels"] == [OS_LINUX]


def test_darwin_without_arch_is_left_alone() -> None:
    darwin = [{"name": "os", "value": "darwin"}]
    assert appc.image_manifest({"name": "a", "labels": darwin})["labels"] == darwin
