"""OCI images made by hand: layers from (name, content) lists, an OCI layout,
an oci-archive of it.  For whiteout, opaque-directory and hostile-layer tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes | None = b""     # None: a directory
    link: str | None = None      # a symlink's target (data ignored)
    hardlink: str | None = None
    mode: int = 0o644


def layer_tar(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = 1_600_000_000
            info.mode = entry.mode
            if entry.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, entry.link
                tar.addfile(info)
            elif entry.hardlink is not None:
                info.type, info.linkname = tarfile.LNKTYPE, entry.hardlink
                tar.addfile(info)
            elif entry.data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return out.getvalue()


def _blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}"


def oci_layout(layout: Path, layers: list[bytes], config: dict | None = None,
               platform: tuple[str, str] = ("linux", "amd64"),
               annotations: dict[str, str] | None = None) -> str:
    """Write an OCI layout at LAYOUT with LAYERS (tar bytes, gzipped here):
    the image manifest's digest."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    described, diff_ids = [], []
    for tar in layers:
        packed = gzip.compress(tar, mtime=0)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
        described.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                          "digest": _blob(layout, packed), "size": len(packed)})
    image_config = {"architecture": platform[1], "os": platform[0],
                    "config": config or {},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_bytes = json.dumps(image_config).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": _blob(layout, config_bytes), "size": len(config_bytes)},
                "layers": described}
    if annotations:
        manifest["annotations"] = annotations
    manifest_bytes = json.dumps(manifest).encode()
    digest = _blob(layout, manifest_bytes)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest,
                            "size": len(manifest_bytes),
                            "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
    (layout / "index.json").write_text(json.dumps(index))
    return digest


def multi_arch_layout(layout: Path, images: dict[tuple[str, str], list[bytes]]) -> None:
    """An OCI layout whose index names one image per (os, architecture)."""
    entries = []
    for platform, layers in images.items():
        digest = oci_layout(layout, layers, platform=platform)
        size = (layout / "blobs" / "sha256" / digest.split(":")[1]).stat().st_size
        entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                        "platform": {"os": platform[0], "architecture": platform[1]}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": entries}).encode()
    top = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [{"mediaType": OCI_INDEX, "digest": _blob(layout, index),
                          "size": len(index),
                          "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
    (layout / "index.json").write_text(json.dumps(top))


def archive(layout: Path, out: Path) -> Path:
    """LAYOUT packed as an oci-archive."""
    with tarfile.open(out, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return out


def tree_layer(root: Path) -> bytes:
    """A whole directory tree as one layer (numeric owners, as found)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return out.getvalue()
