"""The `image` step's `oci` field, as acigen reads it when it writes the build.

    "oci": "docker://HOST/NAME:TAG"        fetched in the fetch pool (pull.py)
    "oci": "docker://HOST/NAME@sha256:..." pinned
    "oci": "oci-archive:PATH" | "oci:DIR"  local (relative to the manifest): inputs

The step's definition gets the normalised reference and the platform the
manifest's os/arch labels name (an index is resolved to it); a local image's
path becomes relative to the build file, like every other local path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from acigen.errors import HelperError
from acigen.imageref import parse

if TYPE_CHECKING:
    from acigen.jsoncheck import Node
    from acigen.steps import Context, Step


def platform_of(labels: list[dict[str, str]]) -> list[str | None]:
    """The manifest's os/arch labels in OCI's names (appc aarch64 is arm64)."""
    from acigen.oci_config import PLATFORMS
    found = {label["name"]: label["value"] for label in labels}
    key = (found.get("os", "linux"), found.get("arch", "amd64"))
    return list(PLATFORMS.get(key, (key[0], key[1], None)))


def parse_oci(node: Node, fields: dict[str, Node], ctx: Context, index: int,
              definition: dict[str, Any]) -> Step:
    from acigen.steps import Step
    text = fields["oci"].string(non_empty=True)
    for key in ("sha256", "sha512"):
        if key in fields:
            raise fields[key].error(f"{key} pins an archive; pin an OCI image by digest in "
                                    "the reference (docker://HOST/NAME@sha256:...)")
    try:
        ref = parse(text)
    except HelperError as exc:
        raise fields["oci"].error(str(exc)) from None
    definition["platform"] = list(ctx.platform)
    if ref.transport == "docker":
        definition["oci"] = str(ref)
        return Step(index, "image", definition, f"pull {ref}", url=str(ref))
    path = _local(fields["oci"], ref.path, ctx, ref.transport)
    definition["oci"] = f"{ref.transport}:{path}"
    return Step(index, "image", definition, f"unpack {ref}",
                inputs=(os.path.join(path, "index.json") if ref.transport == "oci" else path,))


def _local(node: Node, value: str, ctx: Context, transport: str) -> str:
    """VALUE (a path relative to the manifest) relative to the ninja dir, checked."""
    path = os.path.normpath(os.path.join(ctx.manifest_dir, value))
    kind = "dir" if transport == "oci" else "file"
    if ctx.check_files:
        found = os.path.isdir(path) if kind == "dir" else os.path.isfile(path)
        if not found:
            raise node.error(f"{value!r}: no such {kind}")
    return path if os.path.isabs(value) else os.path.relpath(path, ctx.ninja_dir)
