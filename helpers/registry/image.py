"""The `image` step with `oci`: an OCI image's layers, in order, into the layer.

    {"type": "image", "oci": "docker://HOST/NAME:TAG", "ref": ".acigen/fetch/H.ref",
     "platform": ["linux", "amd64", null], "devices": "skip"}
    {"type": "image", "oci": "oci-archive:base.oci.tar", ...}     a local archive
    {"type": "image", "oci": "oci:layout-dir", ...}               a local layout

A registry image was fetched into the download cache by acigen-fetch (see
pull.py); its blobs are checked against their digests here again, and a
damaged or missing one is fetched again.  A local image is read directly.
The image config's run settings are kept beside the layer
(LAYER/image-config.json) for pack and oci: see appdefaults.py.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from acigen.errors import HelperError
from acigen.fileio import atomic_write, json_bytes, read_json
from acigen.helpers.fetch.pins import file_digest
from acigen.helpers.registry import media
from acigen.helpers.registry.apply import apply_layers
from acigen.helpers.registry.layout import Layout, open_image, remove_scratch
from acigen.helpers.unpack.image import devices_policy, max_size_of
from acigen.imageref import parse

if TYPE_CHECKING:
    from acigen.helpers.layers.step import StepContext

CONFIG_FILE = "image-config.json"


def _fetched(ref_path: str) -> dict[str, Any]:
    ref = read_json(ref_path)
    oci = ref.get("oci") if isinstance(ref, dict) else None
    if not isinstance(oci, dict) or not isinstance(oci.get("layers"), list) or \
            not isinstance(oci.get("config"), str):
        raise HelperError(f"{ref_path}: not a registry image reference written by "
                          "acigen-fetch", hint="remove it and build again")
    return ref


def _intact(ref: dict[str, Any]) -> bool:
    paths = [ref["path"], ref["oci"]["config"], *ref["oci"]["layers"]]
    return all(os.path.isfile(p) and file_digest(p, "sha256") == os.path.basename(p)
               for p in paths)


def registry_blobs(ref_path: str) -> tuple[str, str, list[str]]:
    """(reference, config path, layer paths) of what acigen-fetch brought, checked."""
    ref = _fetched(ref_path)
    if not _intact(ref):
        from acigen.helpers.fetch.obtain import refetch
        ref = refetch(ref_path, f"{ref['url']}: a cached blob is damaged or gone")
        if not _intact(ref):
            raise HelperError(f"{ref['url']}: the cached blobs are still damaged")
    return ref["url"], ref["oci"]["config"], list(ref["oci"]["layers"])


@contextlib.contextmanager
def _local_blobs(layout: Layout, layers: list[media.Descriptor]) -> Iterator[Iterator[str]]:
    """Each layer's file in turn; an archive's copy is removed after its use."""
    def files() -> Iterator[str]:
        for item in layers:
            path = layout.blob_file(item) if layout.transport == "oci-archive" else \
                _checked_layout_blob(layout, item)
            yield path
            if layout.transport == "oci-archive":
                os.unlink(path)
    try:
        yield files()
    finally:
        layout.close()
        remove_scratch(layout.scratch)


def _checked_layout_blob(layout: Layout, item: media.Descriptor) -> str:
    path = os.path.join(layout.path, "blobs", "sha256", item.hex)
    if not os.path.isfile(path) or file_digest(path, "sha256") != item.hex:
        raise HelperError(f"{layout.what}: digest mismatch or missing blob {item.digest}")
    return path


def platform_of(step: dict[str, Any]) -> tuple[str, str, str | None]:
    value = step.get("platform") or ["linux", "amd64", None]
    return (value[0], value[1], value[2] if len(value) > 2 else None)


def oci_action(ctx: StepContext) -> str:
    step = ctx.step
    devices = devices_policy(step.get("devices", False))
    max_size = max_size_of(step.get("max_size"))
    ref = parse(step["oci"])
    layer_dir = ctx.spec.layer
    if "ref" in step:
        name, config_path, paths = registry_blobs(step["ref"])
        with open(config_path, "rb") as src:
            config = src.read()
        ctx.say(f"applying {len(paths)} layers of {name} into {ctx.root}")
        entries, size, whiteouts = apply_layers(ctx.root, paths, devices, max_size, name)
        count = len(paths)
    else:
        name = str(ref)  # ref.path is in ctx.inputs_read (unpack.image.image_step_reads)
        scratch = layer_dir + ".blobs"
        remove_scratch(scratch)
        layout = Layout(ref.transport, ref.path, scratch)
        _digest, _config, layers, config = open_image(layout, platform_of(step))
        with _local_blobs(layout, layers) as files:
            entries, size, whiteouts = apply_layers(ctx.root, files, devices, max_size, name)
        count = len(layers)
    run = media.run_config(config, f"{name}: the image config")
    atomic_write(os.path.join(layer_dir, CONFIG_FILE), json_bytes(run))
    return (f"unpacked {name}: {count} layers, {entries} entries, {size / 1e6:.1f} MB, "
            f"{whiteouts} whiteouts")
