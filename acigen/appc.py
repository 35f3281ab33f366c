"""The App Container ImageManifest (appc 0.8.11): validation and defaults.

The rules are those of appc's Go code (schema/types/*.go, what `actool
validate` runs); where acigen is stricter, docs/manifest.md says so and why.
"""

from __future__ import annotations

import os

from acigen import appc_app
from acigen.appc_formats import date_problem, semver_problem, url_problem
from acigen.appc_types import IMAGE_ID, UINT64_MAX, absolute_path, identifier, unique
from acigen.jsoncheck import Node
from acigen.specs import STEPS_KEY

TYPE_CHECKING = False  # typing costs ~2 ms to import, at every regeneration
if TYPE_CHECKING:
    from typing import Any

AC_VERSION = "0.8.11"

OS_ARCH = {
    "linux": ("amd64", "i386", "aarch64", "aarch64_be", "armv6l", "armv7l", "armv7b",
              "ppc64", "ppc64le", "s390x"),
    "freebsd": ("amd64", "i386", "arm"),
    "darwin": ("x86_64", "i386"),
}
# uname -m -> appc's arch name
HOST_ARCH = {"x86_64": "amd64", "i686": "i386", "i586": "i386", "i386": "i386",
             "aarch64": "aarch64", "aarch64_be": "aarch64_be", "armv6l": "armv6l",
             "armv7l": "armv7l", "ppc64": "ppc64", "ppc64le": "ppc64le", "s390x": "s390x"}

FORMAT_HINTS = {
    "created": "RFC 3339: YYYY-MM-DDThh:mm:ss[.fraction] then Z or ±hh:mm",
    "homepage": "http:// or https://, then a host; spaces and the like %-escaped",
    "documentation": "http:// or https://, then a host; spaces and the like %-escaped",
}

TOP_KEYS = ("acKind", "acVersion", "name", "labels", "app", "dependencies",
            "pathWhitelist", "annotations")


def host_labels() -> list[dict[str, str]]:
    """The default os/arch labels: those of the build host, in appc's names."""
    labels = [{"name": "os", "value": "linux"}]
    arch = HOST_ARCH.get(os.uname().machine)
    if arch:
        labels.append({"name": "arch", "value": arch})
    return labels


def check_labels(node: Node) -> None:
    items = list(node.items())
    for item in items:
        fields = item.obj(required=("name", "value"))
        name = identifier(fields["name"], "a valid label name (an AC Identifier)")
        if name == "name":
            raise fields["name"].error("a label may not be called 'name'")
        fields["value"].string()
    unique(items, "name", "label")
    values = {item.value["name"]: item for item in items}
    if "os" in values:
        os_value = values["os"].value["value"]
        if os_value not in OS_ARCH:
            raise values["os"].child("value").error(
                f"unknown os {os_value!r}", "known: " + ", ".join(sorted(OS_ARCH)))
        if "arch" in values and values["arch"].value["value"] not in OS_ARCH[os_value]:
            raise values["arch"].child("value").error(
                f"arch {values['arch'].value['value']!r} is not valid for os {os_value!r}",
                "valid: " + ", ".join(OS_ARCH[os_value]))


def check_name_values(node: Node, what: str, name_check) -> None:  # type: ignore[no-untyped-def]
    items = list(node.items())
    for item in items:
        fields = item.obj(required=("name", "value"))
        name_check(fields["name"])
        fields["value"].string()
    unique(items, "name", what)


def check_annotations(node: Node) -> None:
    check_name_values(node, "annotation", identifier)
    for item in node.items():
        name, value = item.value["name"], item.value["value"]
        problem = None
        if name == "created":
            problem = date_problem(value)
        elif name in ("homepage", "documentation"):
            problem = url_problem(value)
        if problem:
            raise item.child("value").error(f"{name} {value!r} {problem}", FORMAT_HINTS[name])


def check_dependencies(node: Node) -> None:
    for item in node.items():
        fields = item.obj(required=("imageName",), optional=("imageID", "labels", "size"))
        identifier(fields["imageName"])
        if "imageID" in fields:
            image_id = fields["imageID"].string()
            if not IMAGE_ID.fullmatch(image_id):
                raise fields["imageID"].error(f"{image_id!r} is not an image ID (sha512-...)")
        if "labels" in fields:
            check_labels(fields["labels"])
        if "size" in fields:
            fields["size"].integer(low=0, high=UINT64_MAX)


def check_version(node: Node) -> None:
    version = node.string()
    problem = semver_problem(version)
    if problem:
        raise node.error(f"{version!r} {problem}", "MAJOR.MINOR.PATCH (SemVer 2.0), e.g. "
                         f"{AC_VERSION}")
    if not version.startswith("0."):
        raise node.error(f"acVersion {version} is newer than appc {AC_VERSION}, "
                         "the spec this tool implements")


def check_manifest(root: Node) -> dict[str, Node]:
    """Validate the appc part of a manifest; returns its top-level fields."""
    fields = root.obj(required=("name", STEPS_KEY), optional=TOP_KEYS)
    if "acKind" in fields and fields["acKind"].string() != "ImageManifest":
        raise fields["acKind"].error(f"acKind must be 'ImageManifest', got "
                                     f"{fields['acKind'].value!r}")
    if "acVersion" in fields:
        check_version(fields["acVersion"])
    identifier(fields["name"], "a valid image name (an AC Identifier)")
    if "labels" in fields:
        check_labels(fields["labels"])
    if "app" in fields:
        appc_app.check_app(fields["app"])
    if "dependencies" in fields:
        check_dependencies(fields["dependencies"])
    if "pathWhitelist" in fields:
        for item in fields["pathWhitelist"].items():
            absolute_path(item)
    if "annotations" in fields:
        check_annotations(fields["annotations"])
    return fields


def default_labels(labels: list[dict[str, str]]) -> list[dict[str, str]]:
    """LABELS, with the build host's os and arch when they name neither:
    naming one (`os: linux` alone) makes an architecture-independent image."""
    if any(label["name"] in ("os", "arch") for label in labels):
        return labels
    return labels + host_labels()


def image_manifest(document: dict[str, Any]) -> dict[str, Any]:
    """The manifest that goes into the image: build steps removed, defaults
    filled in (acKind, acVersion, os/arch labels)."""
    merged = {"acKind": "ImageManifest", "acVersion": AC_VERSION, **document,
              "labels": default_labels(list(document.get("labels", [])))}
    return {key: merged[key] for key in TOP_KEYS if key in merged}
