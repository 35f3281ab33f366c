"""One file and a small config pushed as a tagged single-layer manifest: how
the cache repository keeps a step's layer (layercache) and an image's
compressed chunks (chunkshare)."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

from acigen.helpers.registry import media
from acigen.helpers.registry.client import Client


@dataclass(frozen=True)
class Artifact:
    path: str  # the file: the manifest's one layer
    digest: str  # "sha256:..." of it
    size: int
    layer_type: str
    config: bytes
    config_type: str


def put_artifact(client: Client, tag: str, item: Artifact, annotation: tuple[str, str]) -> None:
    """Upload what the registry lacks, then tag the manifest (ANNOTATION: key, value)."""
    if not client.has_blob(item.digest):
        with open(item.path, "rb") as data:
            client.upload_blob(item.digest, data, item.size)
    config_digest = "sha256:" + hashlib.sha256(item.config).hexdigest()
    if not client.has_blob(config_digest):
        client.upload_blob(config_digest, io.BytesIO(item.config), len(item.config))
    manifest = {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
                "config": {"mediaType": item.config_type, "digest": config_digest,
                           "size": len(item.config)},
                "layers": [{"mediaType": item.layer_type, "digest": item.digest,
                            "size": item.size}],
                "annotations": dict([annotation])}
    client.put_manifest(tag, json.dumps(manifest, sort_keys=True).encode(), media.OCI_MANIFEST)
