"""The App Container ImageManifest (appc 0.8.11): validation and defaults.

The rules are appc's (spec/types.md, spec/aci.md), using the documented
regular expressions, which are stricter than the Go reference code.
"""

from __future__ import annotations

import platform
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from acigen.jsoncheck import Node

AC_VERSION = "0.8.11"
STEPS_KEY = "-aci-packer-build-steps-"

AC_IDENTIFIER = re.compile(r"^[a-z0-9]+([-._~/][a-z0-9]+)*$")
AC_NAME = re.compile(r"^[a-z0-9]+([-][a-z0-9]+)*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z_0-9.-]*$")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
IMAGE_ID = re.compile(r"^sha512-[0-9a-f]+$")

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

ISOLATORS = (
    "resource/cpu", "resource/memory", "resource/block-bandwidth", "resource/block-iops",
    "resource/network-bandwidth", "os/linux/capabilities-retain-set",
    "os/linux/capabilities-remove-set", "os/linux/no-new-privileges",
    "os/linux/seccomp-retain-set", "os/linux/seccomp-remove-set", "os/linux/oom-score-adj",
    "os/linux/cpu-shares", "os/linux/selinux-context", "os/linux/apparmor-profile",
    "os/unix/sysctl",
)

TOP_KEYS = ("acKind", "acVersion", "name", "labels", "app", "dependencies",
            "pathWhitelist", "annotations")


def host_labels() -> list[dict[str, str]]:
    """The default os/arch labels: those of the build host, in appc's names."""
    labels = [{"name": "os", "value": "linux"}]
    arch = HOST_ARCH.get(platform.machine())
    if arch:
        labels.append({"name": "arch", "value": arch})
    return labels


def identifier(node: Node, what: str = "an AC Identifier") -> str:
    value = node.string()
    if not AC_IDENTIFIER.match(value):
        raise node.error(f"{value!r} is not {what}",
                         "lowercase letters, digits and -._~/, starting and ending "
                         "with a letter or digit")
    return value


def ac_name(node: Node) -> str:
    value = node.string()
    if not AC_NAME.match(value):
        raise node.error(f"{value!r} is not an AC Name",
                         "lowercase letters, digits and -, starting and ending with a "
                         "letter or digit")
    return value


def absolute_path(node: Node) -> str:
    value = node.string()
    if not value.startswith("/"):
        raise node.error(f"{value!r} is not an absolute path")
    return value


def _unique(nodes: list[Node], key: str, what: str) -> None:
    seen: set[str] = set()
    for node in nodes:
        name = node.value[key]
        if name in seen:
            raise node.child(key).error(f"{what} {name!r} appears more than once")
        seen.add(name)


def check_labels(node: Node) -> None:
    items = list(node.items())
    for item in items:
        fields = item.obj(required=("name", "value"))
        name = identifier(fields["name"], "a valid label name (an AC Identifier)")
        if name == "name":
            raise fields["name"].error("a label may not be called 'name'")
        fields["value"].string()
    _unique(items, "name", "label")
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
    _unique(items, "name", what)


def check_annotations(node: Node) -> None:
    check_name_values(node, "annotation", identifier)
    for item in node.items():
        name, value = item.value["name"], item.value["value"]
        if name == "created":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
                ok = "T" in value
            except ValueError:
                ok = False
            if not ok:
                raise item.child("value").error(f"created {value!r} is not an RFC 3339 date")
        if name in ("homepage", "documentation") and \
                urlparse(value).scheme not in ("http", "https"):
            raise item.child("value").error(f"{name} {value!r} is not an http(s) URL")


def check_dependencies(node: Node) -> None:
    for item in node.items():
        fields = item.obj(required=("imageName",), optional=("imageID", "labels", "size"))
        identifier(fields["imageName"])
        if "imageID" in fields:
            image_id = fields["imageID"].string()
            if not IMAGE_ID.match(image_id):
                raise fields["imageID"].error(f"{image_id!r} is not an image ID (sha512-...)")
        if "labels" in fields:
            check_labels(fields["labels"])
        if "size" in fields:
            fields["size"].integer(low=0)


def check_version(node: Node) -> None:
    version = node.string()
    match = SEMVER.match(version)
    if not match:
        raise node.error(f"{version!r} is not a semantic version")
    if version.split("+")[0].split("-")[0] == "0.0.0":
        raise node.error("acVersion must not be 0.0.0")
    if match.group(1) != "0":
        raise node.error(f"acVersion {version} is newer than appc {AC_VERSION}, "
                         "the spec this tool implements")


def check_manifest(root: Node) -> dict[str, Node]:
    """Validate the appc part of a manifest; returns its top-level fields."""
    from acigen import appc_app  # the app section is big enough for its own module

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


def image_manifest(document: dict[str, Any]) -> dict[str, Any]:
    """The manifest that goes into the image: build steps removed, defaults
    filled in (acKind, acVersion, os/arch labels; user labels win)."""
    labels = list(document.get("labels", []))
    given = {label["name"] for label in labels}
    labels += [label for label in host_labels() if label["name"] not in given]
    merged = {"acKind": "ImageManifest", "acVersion": AC_VERSION, **document,
              "labels": labels}
    return {key: merged[key] for key in TOP_KEYS if key in merged}
