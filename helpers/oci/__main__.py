"""acigen-oci: an image's layers -> an OCI image archive (and a docker archive).

Ninja runs

    python -m acigen.helpers.oci --image IMAGEFILE --out OUT.oci.tar
                                 [--docker-archive OUT.docker.tar] [--squash]

IMAGEFILE is the image file the pack helper reads (manifest, layers nearest
first, layer_mode, compression, source_date_epoch, chunk_cache) plus two
optional keys: `oci_compression` ("gzip", "zstd" or "none"; default: "none"
when the ACI's compression is none, else "gzip") and `tag` (default: the
version label, else "latest").  By hand, one layer from a directory:

    acigen-oci --manifest MANIFEST.json --rootfs DIR -o OUT.oci.tar
               [--docker-archive FILE] [-C gzip|zstd|none] [--source-date-epoch N]

OUT is an OCI image layout (oci-layout, index.json, blobs/sha256/...) as a
tar: an "oci-archive" for `skopeo copy oci-archive:OUT ...` or `podman
load`.  One layer per build step (see oci/layer.py), or with --squash one
layer of the merged tree.  The docker archive (manifest.json, the config,
the layers) is for `docker load`; it shares the OCI layers, except that
with zstd its layers are gzip (not every docker can read zstd).  Both are
written under temporary names and renamed; the same inputs give the same
bytes, so the same manifest digest.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from acigen import oci_config
from acigen.errors import ExitCode, HelperError
from acigen.fileio import canonical_json, read_json, remove_file
from acigen.helpers.core import buildlock
from acigen.helpers.core.common import run_main, warn, watch_for_orphaning
from acigen.helpers.core.outfile import temporary_beside
from acigen.helpers.layers import layerrecord, layers
from acigen.helpers.oci.archive import ArchiveWriter, Blob, compressor
from acigen.helpers.oci.layer import (
    LayerCounts,
    LayerWriter,
    layer_sources,
    write_diff,
    write_full,
    write_upper,
)
from acigen.helpers.rootfs.root import Root
from acigen.helpers.tar.chunks import ChunkCache, MiB
from acigen.specs import OCI_COMPRESSIONS, STEPS_KEY, ImageSpec, load_spec

PROG = "acigen-oci"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
               "none": "application/vnd.oci.image.layer.v1.tar"}
DOCKER_COMPRESSION = {"gzip": "gzip", "none": "none", "zstd": "gzip"}


@dataclass(frozen=True)
class OciRequest:
    manifest: dict[str, Any]
    out: str
    docker_out: str | None = None
    compression: str = "gzip"
    epoch: int = 0
    cache_dir: str | None = None
    squash: bool = False
    tag: str | None = None


@dataclass
class Written:
    """What went into the archives."""

    diff_ids: list[str] = field(default_factory=list)
    blobs: list[Blob] = field(default_factory=list)
    docker_blobs: list[Blob] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    chunk_names: dict[str, list[str]] = field(default_factory=dict)
    counts: LayerCounts = field(default_factory=LayerCounts)
    size: int = 0
    chunks: int = 0
    reused: int = 0


# -- the input ----------------------------------------------------------------------

def _check(condition: bool, message: str) -> None:
    if not condition:
        raise HelperError(message)


def check_manifest(manifest: Any, where: str) -> dict[str, Any]:
    _check(isinstance(manifest, dict) and isinstance(manifest.get("name"), str),
           f"{where}: expected an image manifest (a JSON object with a name)")
    return {key: value for key, value in manifest.items() if key != STEPS_KEY}


def load_image_file(path: str, args: argparse.Namespace) -> tuple[OciRequest, list[str], str]:
    """(request, layer dirs nearest first, layer mode) from acigen's image file."""
    spec = load_spec(ImageSpec, path)
    request = OciRequest(
        manifest=check_manifest(spec.manifest, f"{path}: manifest"), out=args.out,
        docker_out=args.docker_archive or spec.docker_archive,
        compression=spec.oci_layer_compression, epoch=spec.source_date_epoch,
        cache_dir=spec.chunk_cache, squash=args.squash or spec.squash, tag=spec.tag)
    return request, spec.layers, spec.layer_mode


# -- layers ---------------------------------------------------------------------------

class Tee:
    """One tar stream into several compressors (tarstream's Sink)."""

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks

    def mark(self, key: bytes) -> None:
        for sink in self.sinks:
            sink.mark(key)

    def write(self, data: bytes) -> None:
        for sink in self.sinks:
            sink.write(data)

    def isolate(self, size: int) -> None:
        for sink in self.sinks:
            sink.isolate(size)


Target = tuple[ArchiveWriter, str, str]  # archive, compression, name for chunk records


def write_layer(targets: list[Target], cache: ChunkCache | None, epoch: int,
                fill: Callable[[LayerWriter], LayerCounts], written: Written) -> None:
    """One layer into every target archive, each with its compression."""
    with contextlib.ExitStack() as stack:
        slots = [stack.enter_context(archive.blob()) for archive, _, _ in targets]
        streams = [stack.enter_context(compressor(archive.out, compression, cache))
                   for archive, compression, _ in targets]
        counts = fill(LayerWriter(Tee(streams), epoch))
        for slot, stream, (_, _, name) in zip(slots, streams, targets, strict=True):
            result = stream.close()
            slot.digest = "sha256:" + (result.compressed_digest or "")
            written.chunk_names.setdefault(name, []).extend(result.names)
            written.chunks += result.chunks
            written.reused += result.reused
    written.diff_ids.append("sha256:" + result.digests["sha256"])
    written.size += result.size
    written.counts.entries += counts.entries
    written.counts.whiteouts += counts.whiteouts
    written.counts.opaque += counts.opaque
    for (archive, _, name), slot in zip(targets, slots, strict=True):
        blobs = written.blobs if name == "oci" else written.docker_blobs
        blobs.append(archive.blobs[slot.digest])


def layer_fills(dirs: list[str], mode: str, squashed_root: str | None
                ) -> Iterator[tuple[str, Callable[[LayerWriter], LayerCounts]]]:
    """(history line, how to write it) for each layer, base first."""
    if squashed_root is not None:
        yield (f"acigen: {len(dirs)} build steps, squashed",
               lambda w: write_full(w, squashed_root))
        return
    trees = [layers.tree(d) for d in dirs]
    for directory, (tree, below) in zip(reversed(dirs), layer_sources(trees, mode),
                                        strict=True):
        what = f"acigen: layer {os.path.basename(os.path.normpath(directory))}"
        if below is not None:
            yield what, lambda w, t=tree, b=below: write_diff(w, t, b)
        elif mode == "copy":
            yield what, lambda w, t=tree: write_full(w, t)
        else:
            yield what, lambda w, t=tree: write_upper(w, t, whiteout_files=mode == "fuse")


# -- the image --------------------------------------------------------------------------

def owner_resolver(root: str | None) -> oci_config.OwnerOf | None:
    """appc's "/path" user or group: the owner of that file in the image."""
    if root is None:
        return None

    def owner_of(path: str) -> tuple[int, int]:
        try:
            with Root(root) as confined:
                fd = confined.open(path, os.O_PATH)
                try:
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise HelperError(f"app user/group {path}: not in the image ({exc.strerror})") \
                from None
        return st.st_uid, st.st_gid
    return owner_of


def image_documents(req: OciRequest, written: Written, root: str | None
                    ) -> tuple[bytes, dict[str, Any]]:
    """(config bytes, manifest object without the config descriptor)."""
    config = oci_config.image_config(req.manifest, req.epoch, written.diff_ids,
                                     written.history, owner_resolver(root))
    annotations = oci_config.annotations(req.manifest, req.epoch)
    layer_type = LAYER_TYPES[req.compression]
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "layers": [{"mediaType": layer_type, "digest": b.digest, "size": b.size}
                           for b in written.blobs],
                "annotations": annotations}
    return canonical_json(config), manifest


def finish_oci(archive: ArchiveWriter, req: OciRequest, config: bytes,
               manifest: dict[str, Any]) -> str:
    """Config, manifest, index and layout file; returns the manifest digest."""
    config_blob = archive.blob_bytes(config)
    manifest["config"] = {"mediaType": CONFIG_TYPE, "digest": config_blob.digest,
                          "size": config_blob.size}
    manifest_blob = archive.blob_bytes(canonical_json(manifest))
    tag = req.tag or oci_config.tag(req.manifest)
    repository = oci_config.repository(req.manifest)
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [{
        "mediaType": MANIFEST_TYPE, "digest": manifest_blob.digest,
        "size": manifest_blob.size,
        "annotations": {"org.opencontainers.image.ref.name": tag,
                        "io.containerd.image.name": f"{repository}:{tag}"}}]}
    archive.file("index.json", canonical_json(index))
    archive.file("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
    archive.end()
    return manifest_blob.digest


def finish_docker(docker: ArchiveWriter, req: OciRequest, config: bytes,
                  written: Written, oci_file: BinaryIO) -> None:
    if not written.docker_blobs:  # same compression: the OCI archive's blobs
        for blob in written.blobs:
            docker.copy_blob(blob, oci_file)
        written.docker_blobs = [docker.blobs[b.digest] for b in written.blobs]
    config_blob = docker.blob_bytes(config)
    tag = req.tag or oci_config.tag(req.manifest)
    entry = {"Config": config_blob.path,
             "RepoTags": [f"{oci_config.repository(req.manifest)}:{tag}"],
             "Layers": [blob.path for blob in written.docker_blobs]}
    docker.file("manifest.json", canonical_json([entry]))
    docker.end()


@dataclass(frozen=True)
class OciResult:
    manifest_digest: str
    written: Written
    size: int


def write_image(req: OciRequest, dirs: list[str], mode: str, root: str | None) -> OciResult:
    """All layers (or ROOT, squashed) into REQ.out, and REQ.docker_out."""
    cache = ChunkCache(req.cache_dir) if req.cache_dir and req.compression != "none" else None
    written = Written()
    with contextlib.ExitStack() as stack:
        if cache is not None:
            stack.enter_context(cache.in_use())
        oci_file, oci_tmp = stack.enter_context(temporary_beside(req.out))
        oci = ArchiveWriter(oci_file, req.epoch)
        targets: list[Target] = [(oci, req.compression, "oci")]
        docker = None
        if req.docker_out:
            docker_file, docker_tmp = stack.enter_context(temporary_beside(req.docker_out))
            docker = ArchiveWriter(docker_file, req.epoch)
            docker.directory("blobs")
            docker.directory("blobs/sha256")
            if DOCKER_COMPRESSION[req.compression] != req.compression:
                targets.append((docker, DOCKER_COMPRESSION[req.compression], "docker"))
        oci.directory("blobs")
        oci.directory("blobs/sha256")
        squashed = root if req.squash else None
        for what, fill in layer_fills(dirs, mode, squashed):
            written.history.append(what)
            write_layer(targets, cache, req.epoch, fill, written)
        config, manifest = image_documents(req, written, root)
        digest = finish_oci(oci, req, config, manifest)
        if docker is not None and req.docker_out:
            finish_docker(docker, req, config, written, oci_file)
            os.chmod(docker_tmp, 0o644)
            os.replace(docker_tmp, os.path.abspath(req.docker_out))
        size = oci_file.tell()
        os.chmod(oci_tmp, 0o644)
        os.replace(oci_tmp, os.path.abspath(req.out))
        if cache is not None:
            for name, out in (("oci", req.out), ("docker", req.docker_out)):
                if out:
                    cache.record(os.path.abspath(out), written.chunk_names.get(name, []))
            cache.collect()
            warn(PROG, cache.damage_report())
    return OciResult(digest, written, size)


def summary(req: OciRequest, result: OciResult) -> str:
    w = result.written
    name = f"{oci_config.repository(req.manifest)}:{req.tag or oci_config.tag(req.manifest)}"
    line = (f"{os.path.basename(req.out)}: OCI image {name}, {len(w.diff_ids)} layer"
            f"{'s' if len(w.diff_ids) != 1 else ''} ({w.counts.whiteouts} whiteouts, "
            f"{w.counts.opaque} opaque dirs), manifest {result.manifest_digest}, "
            f"{w.size / MiB:.1f} MiB tar -> {result.size / MiB:.1f} MiB {req.compression}; "
            f"{w.chunks} chunks, {w.reused} from cache")
    if req.docker_out:
        line += f"; docker archive {os.path.basename(req.docker_out)}"
    return line


# -- the two ways in ------------------------------------------------------------------

def _mount_dir(first_layer: str, out: str) -> str:
    base = os.path.dirname(os.path.dirname(os.path.normpath(first_layer)))
    tag = hashlib.sha256(os.fsencode(os.path.abspath(out))).hexdigest()[:16]
    return os.path.join(base, "mnt", f"oci-{tag}")


def needs_root_view(req: OciRequest) -> bool:
    app = req.manifest.get("app", {})
    return req.squash or str(app.get("user", "")).startswith("/") or \
        str(app.get("group", "")).startswith("/")


def remove_outputs(req: OciRequest) -> None:
    """Old outputs go first: a failed run must not leave them looking new."""
    remove_file(req.out)
    if req.docker_out:
        remove_file(req.docker_out)


def from_layers(args: argparse.Namespace) -> int:
    req, dirs, requested = load_image_file(args.image, args)
    from acigen.helpers.registry.appdefaults import with_base_defaults  # an OCI base's app
    req = dataclasses.replace(req, manifest=with_base_defaults(req.manifest, dirs)[0])
    buildlock.hold_for(dirs[0])
    remove_outputs(req)
    mode = layers.choose_mode(requested, os.path.dirname(os.path.normpath(dirs[0])))
    missing = [d for d in dirs if not os.path.isdir(layers.tree(d))]
    _check(not missing, f"layer {missing[0] if missing else ''} is missing; build the "
           "image's steps first")
    with contextlib.ExitStack() as stack:
        stack.enter_context(layers.reading(dirs))
        layerrecord.check(dirs)
        root = None
        if needs_root_view(req):
            layers.enter_private_mount_namespace()  # before any thread starts
            root = stack.enter_context(layers.readonly_view(dirs, mode,
                                                            _mount_dir(dirs[0], req.out)))
        watch_for_orphaning()
        result = write_image(req, dirs, mode, root)
    print(summary(req, result))
    return ExitCode.OK


def by_hand(args: argparse.Namespace) -> int:
    try:
        manifest = read_json(args.manifest)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HelperError(f"{args.manifest}: not valid JSON: {exc}") from None
    _check(os.path.isdir(args.rootfs), f"{args.rootfs}: not a directory")
    epoch = args.source_date_epoch
    if epoch is None:
        value = os.environ.get("SOURCE_DATE_EPOCH", "0") or "0"
        _check(value.isdigit(), f"SOURCE_DATE_EPOCH={value!r}: expected seconds since 1970")
        epoch = int(value)
    _check(epoch >= 0, "--source-date-epoch: expected seconds since 1970")
    req = OciRequest(manifest=check_manifest(manifest, args.manifest), out=args.out,
                     docker_out=args.docker_archive, compression=args.compression,
                     epoch=epoch, cache_dir=args.chunk_cache, squash=True, tag=args.tag)
    remove_outputs(req)
    result = write_image(req, [args.rootfs], "copy", args.rootfs)
    print(summary(req, result))
    return ExitCode.OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Write an image's layers as an OCI "
                                "image archive (and a docker archive).")
    p.add_argument("--image", help="image file written by acigen (ninja's way in)")
    p.add_argument("-o", "--out", required=True, help="the OCI archive to write")
    p.add_argument("--docker-archive", metavar="FILE", help="also write a docker archive")
    p.add_argument("--squash", action="store_true", help="one layer of the merged tree")
    p.add_argument("--manifest", help="by hand: the appc manifest (JSON)")
    p.add_argument("--rootfs", help="by hand: the directory to store as one layer")
    p.add_argument("-C", "--compression", choices=OCI_COMPRESSIONS, default="gzip",
                   help="by hand: layer compression (default gzip)")
    p.add_argument("--source-date-epoch", type=int, metavar="N")
    p.add_argument("--chunk-cache", metavar="DIR")
    p.add_argument("--tag", help="by hand: the tag (default: version label, else latest)")
    return p


def body(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.docker_archive and os.path.abspath(args.docker_archive) == \
            os.path.abspath(args.out):
        p.error("--docker-archive must differ from --out")
    if args.image:
        if args.manifest or args.rootfs:
            p.error("--image excludes --manifest and --rootfs")
        return from_layers(args)
    if not (args.manifest and args.rootfs):
        p.error("give --image, or --manifest and --rootfs")
    return by_hand(args)


def main(argv: list[str] | None = None) -> int:
    return run_main(PROG, body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
