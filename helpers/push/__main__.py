"""acigen-push: send an --oci archive to a registry, only the blobs it lacks.

What ninja runs after the OCI image is written (an edge of its own):

    python -m acigen.helpers.push --spec SPEC --out IMAGE.oci.tar.pushed

The spec, written by acigen:

    {"archive": "app.oci.tar", "ref": "docker://HOST/app:1.0",
     "registry": {"tls_verify": true, "ca_bundle": null, "auth_file": null}}

Each blob (layers, then the config) is asked for first (HEAD) and uploaded
only when the registry lacks it; then the manifest is put under the tag.
The pushed manifest's digest is printed and written to OUT (one line,
`sha256:...`, as skopeo's --digestfile), atomically, last.

By hand:

    acigen-push ARCHIVE REF [--authfile FILE] [--ca-bundle FILE] [--tls-verify=false]
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from acigen.errors import HelperError
from acigen.fileio import atomic_write, read_json
from acigen.helpers.core.common import run_main
from acigen.helpers.registry import media
from acigen.helpers.registry.auth import Settings
from acigen.helpers.registry.client import Client
from acigen.helpers.registry.layout import Layout
from acigen.imageref import Reference, parse

PROG = "acigen-push"


def _image(layout: Layout) -> tuple[bytes, str, list[media.Descriptor]]:
    """(manifest bytes, media type, blobs: layers then config) of the archive's image."""
    index = media.load(layout.read("index.json", media.CONFIG_MAX), f"{layout.what} index.json")
    entries = index.get("manifests")
    if not isinstance(entries, list) or len(entries) != 1:
        raise HelperError(f"{layout.what}: expected one image in index.json")
    chosen = media.descriptor(entries[0], layout.what)
    body = layout.blob_bytes(chosen, media.CONFIG_MAX)
    doc = media.load(body, layout.what)
    kind = media.kind(doc, chosen.media_type, layout.what)
    if kind not in media.MANIFESTS:
        raise HelperError(f"{layout.what}: index.json names an index, not an image")
    config, layers = media.image_parts(doc, layout.what)
    return body, kind, [*layers, config]


def _upload(client: Client, layout: Layout, item: media.Descriptor) -> bool:
    """Upload blob ITEM unless the registry has it: whether it was uploaded."""
    if client.has_blob(item.digest):
        return False
    src = layout.open_member(f"blobs/sha256/{item.hex}")
    if src is None:
        raise HelperError(f"{layout.what}: blobs/sha256/{item.hex} is missing")
    with src:
        client.upload_blob(item.digest, src, item.size)
    return True


def push(archive: str, ref: Reference, settings: Settings) -> tuple[str, str]:
    """Push ARCHIVE to REF: (the manifest digest, a summary line)."""
    if ref.transport != "docker":
        raise HelperError(f"{ref}: only docker:// references are pushed to")
    layout = Layout("oci-archive", archive, "")
    try:
        body, kind, blobs = _image(layout)
        client = Client(ref, settings, push=True)
        uploaded = [item for item in blobs if _upload(client, layout, item)]
    finally:
        layout.close()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if ref.digest and ref.digest != digest:
        raise HelperError(f"{ref}: the image's manifest is {digest}, not the pinned digest")
    client.put_manifest(ref.tag or digest, body, kind)
    size = sum(item.size for item in uploaded)
    return digest, (f"{ref}: pushed {digest} ({len(uploaded)} of {len(blobs)} blobs "
                    f"uploaded, {size / 1e6:.1f} MB; the others were there)")


def _spec(path: str) -> tuple[str, Reference, Settings]:
    spec: Any = read_json(path)
    if not isinstance(spec, dict) or not isinstance(spec.get("archive"), str) or \
            not isinstance(spec.get("ref"), str):
        raise HelperError(f"{path}: not a push spec (\"archive\" and \"ref\" strings)")
    return spec["archive"], parse(spec["ref"]), Settings.from_json(spec.get("registry"))


def _run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Push an OCI archive to a "
                                     "registry, uploading only the blobs it lacks.")
    parser.add_argument("archive", nargs="?")
    parser.add_argument("ref", nargs="?")
    parser.add_argument("--spec", help="a push spec written by acigen")
    parser.add_argument("--out", help="write the pushed manifest's digest here")
    parser.add_argument("--authfile")
    parser.add_argument("--ca-bundle")
    parser.add_argument("--tls-verify", choices=("true", "false"), default="true")
    args = parser.parse_args(argv)
    if args.spec:
        archive, ref, settings = _spec(args.spec)
    elif args.archive and args.ref:
        archive, ref = args.archive, parse(args.ref)
        settings = Settings(args.tls_verify != "false", args.ca_bundle, args.authfile)
    else:
        parser.error("give ARCHIVE REF, or --spec FILE")
    if not os.path.isfile(archive):
        raise HelperError(f"{archive}: no such file")
    digest, summary = push(archive, ref, settings)
    if args.out:
        atomic_write(args.out, (digest + "\n").encode())
    print(summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(PROG, _run, argv, user_namespace=False)  # reads and sends the user's files


if __name__ == "__main__":
    raise SystemExit(main())
