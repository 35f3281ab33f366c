"""Manifests, indexes and their descriptors: read, checked, a platform chosen.

Everything here comes from a registry or an archive, so it is hostile: a
document that is not what its media type says, a digest of the wrong form, a
layer type we cannot unpack, a foreign layer fetched from elsewhere: each is
one line naming it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from acigen.errors import HelperError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYERS = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
CONFIG_MAX = 8 << 20


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str     # sha256:<hex>
    size: int
    platform: dict[str, Any] | None = None

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


def load(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HelperError(f"{what}: not JSON") from None
    if not isinstance(doc, dict):
        raise HelperError(f"{what}: not a JSON object")
    return doc


def kind(doc: dict[str, Any], header: str, what: str) -> str:
    """The document's media type: its own field, else the one it was sent with."""
    media = doc.get("mediaType") or header
    if doc.get("schemaVersion") == 1:
        raise HelperError(f"{what}: a docker schema 1 manifest, which acigen does not read")
    if media not in INDEXES + MANIFESTS:
        if "manifests" in doc:
            return OCI_INDEX
        if "layers" in doc:
            return OCI_MANIFEST
        raise HelperError(f"{what}: media type {media!r} is neither a manifest nor an index")
    return str(media)


def descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise HelperError(f"{what}: a descriptor that is not an object")
    digest, size, media = value.get("digest"), value.get("size"), value.get("mediaType")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise HelperError(f"{what}: digest {digest!r} is not sha256: and 64 hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise HelperError(f"{what}: descriptor {digest} has no valid size")
    if value.get("urls"):
        raise HelperError(f"{what}: {digest} is a foreign layer (fetched from elsewhere), "
                          "which acigen does not follow")
    platform = value.get("platform")
    return Descriptor(str(media or ""), digest, size,
                      platform if isinstance(platform, dict) else None)


def choose(index: dict[str, Any], platform: tuple[str, str, str | None],
           what: str) -> Descriptor:
    """The manifest in INDEX for PLATFORM (os, architecture, variant)."""
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise HelperError(f"{what}: an index without manifests")
    found = [descriptor(e, what) for e in entries]
    if len(found) == 1 and found[0].platform is None:
        return found[0]  # a layout's one image (or one index) by name
    found = [d for d in found if d.media_type in MANIFESTS or not d.media_type]
    os_name, arch, variant = platform
    for item in found:
        p = item.platform or {}
        if p.get("os") == os_name and p.get("architecture") == arch and \
                (variant is None or p.get("variant") in (None, variant)):
            return item
    offered = sorted({f"{(d.platform or {}).get('os')}/{(d.platform or {}).get('architecture')}"
                      for d in found})
    wanted = f"{os_name}/{arch}" + (f"/{variant}" if variant else "")
    raise HelperError(f"{what}: no image for {wanted} (it has {', '.join(offered)})",
                      hint="set the manifest's os and arch labels to one it has")


def image_parts(manifest: dict[str, Any], what: str) -> tuple[Descriptor, list[Descriptor]]:
    """(config, layers) of an image manifest, with layer types we can unpack."""
    config = descriptor(manifest.get("config"), what)
    if config.size > CONFIG_MAX:
        raise HelperError(f"{what}: its config is {config.size} bytes, more than an image "
                          f"config needs ({CONFIG_MAX})")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise HelperError(f"{what}: an image manifest without a layers list")
    out = [descriptor(layer, what) for layer in layers]
    for layer in out:
        if layer.media_type not in LAYERS:
            raise HelperError(f"{what}: layer {layer.digest} has media type "
                              f"{layer.media_type!r}, which acigen does not unpack")
    return config, out


def run_config(config_body: bytes, what: str) -> dict[str, Any]:
    """The `config` object of an image config (how to run it), maybe empty."""
    doc = load(config_body, what)
    run = doc.get("config")
    return run if isinstance(run, dict) else {}
