"""acigen-pack: an image's merged tree -> an App Container Image (NAME.aci).

Ninja runs `python -m acigen.helpers.pack --image IMAGEFILE --out OUT.aci`,
IMAGEFILE being written by acigen (the manifest, the layers nearest first,
layer mode, compression, SOURCE_DATE_EPOCH, the chunk cache).  By hand:

    acigen-pack --manifest MANIFEST.json --rootfs DIR -o OUT.aci [-C xz]
                [--source-date-epoch N] [--chunk-cache DIR] [-j N] [--chunk-size MIB]

The image is a tar of `manifest` then `rootfs/` and everything under it
(see tar/writer.py), compressed in content-defined chunks through a cache
(see tar/chunks.py), written under a temporary name and renamed.  The image ID,
`sha512-` + the SHA-512 of the uncompressed tar, is printed and written to
OUT.aci.id after the image (removed first, so it never names an older image).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from acigen.errors import ExitCode, HelperError
from acigen.fileio import atomic_write, remove_file, writing
from acigen.helpers.core import buildlock
from acigen.helpers.core.common import run_main, warn, watch_for_orphaning
from acigen.helpers.core.outfile import temporary_beside
from acigen.helpers.layers import layerrecord, layers
from acigen.helpers.pack.imagecheck import check_app_identity, root_warnings
from acigen.helpers.tar.chunks import ChunkCache, ChunkedCompressor, ChunkedResult, ChunkPolicy, MiB
from acigen.helpers.tar.writer import REGULAR, Entry, TreeWriter, write_end, write_entry
from acigen.specs import COMPRESSIONS, STEPS_KEY, ImageSpec, load_spec

if TYPE_CHECKING:
    from acigen.helpers.registry.chunkshare import ChunkShare

PROG = "acigen-pack"


@dataclass(frozen=True)
class PackRequest:
    manifest: dict[str, Any]
    out: str
    compression: str = "gzip"
    epoch: int = 0
    cache_dir: str | None = None
    jobs: int | None = None
    chunk_size: int | None = None  # average, in bytes; None: the compression's default
    share: dict[str, Any] | None = None  # --cache-repo: helpers/registry/chunkshare.py


@dataclass(frozen=True)
class PackResult:
    image_id: str
    entries: int
    stream: ChunkedResult


# -- checking the input ---------------------------------------------------------

def check_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """The minimum an ACI manifest needs (acigen validates it fully); the
    build steps are dropped."""
    if not isinstance(manifest, dict):
        raise HelperError(f"{where}: expected a JSON object")
    if manifest.get("acKind") != "ImageManifest":
        raise HelperError(f"{where}: acKind must be 'ImageManifest', "
                          f"got {manifest.get('acKind')!r}")
    for key in ("acVersion", "name"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise HelperError(f"{where}: {key} must be a non-empty string")
    return {key: value for key, value in manifest.items() if key != STEPS_KEY}


def check_out(out: str) -> str:
    if not out.endswith(".aci") or os.path.basename(out) == ".aci":
        raise HelperError(f"{out}: an image's name must end in .aci (the appc spec says so)")
    if os.path.isdir(out):
        raise HelperError(f"{out}: is a directory")
    return out


def load_image_file(path: str, out: str) -> tuple[PackRequest, list[str], str]:
    """(request, layer dirs nearest first, layer mode) from acigen's image file."""
    spec = load_spec(ImageSpec, path)
    request = PackRequest(
        manifest=check_manifest(spec.manifest, f"{path}: manifest"), out=check_out(out),
        compression=spec.compression, epoch=spec.source_date_epoch,
        cache_dir=spec.chunk_cache, jobs=spec.jobs, chunk_size=spec.chunk_size,
        share=spec.cache)
    return request, spec.layers, spec.layer_mode


def load_manifest_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as src:
            manifest = json.load(src)
    except FileNotFoundError:
        raise HelperError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise HelperError(f"{path}: is a directory, not a manifest") from None
    except json.JSONDecodeError as exc:
        raise HelperError(f"{path}: not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise HelperError(f"{path}: not UTF-8 text") from None
    return check_manifest(manifest, path)


# -- writing the image ------------------------------------------------------------

def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The image's own manifest: its keys in the order the compiler wrote
    them, not fileio's sorted styles (the bytes are part of the image ID)."""
    return (json.dumps(manifest, indent=2) + "\n").encode()


def _stream_image(root: str, req: PackRequest, cache: ChunkCache | None,
                  out: BinaryIO) -> tuple[ChunkedResult, int]:
    policy = ChunkPolicy.for_average(req.chunk_size) if req.chunk_size else None
    data = manifest_bytes(req.manifest)
    with ChunkedCompressor(out, req.compression, cache, req.jobs, policy) as stream:
        write_entry(stream, Entry(b"manifest", REGULAR, 0o644, 0, 0, req.epoch, len(data)),
                    data)
        tree = TreeWriter(stream, req.epoch)
        tree.write_tree(os.fsencode(root), b"rootfs")
        write_end(stream)
        return stream.close(), tree.entries + 1


def write_image(root: str, req: PackRequest,
                offered: Mapping[str, bytes | memoryview] | None = None,
                offered_by: str = "") -> PackResult:
    """Pack ROOT with REQ's manifest into REQ.out (atomically), then OUT.id.
    OFFERED: compressed chunks by name from OFFERED_BY, each used only if it
    is the chunk named (ChunkCache.from_shared)."""
    if not os.path.isdir(root):
        raise HelperError(f"{root}: not a directory")
    check_app_identity(root, req.manifest)
    for warning in root_warnings(root):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    out = os.path.abspath(req.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cache = ChunkCache(req.cache_dir) if req.cache_dir and req.compression != "none" else None
    with contextlib.ExitStack() as stack:
        if cache is not None:
            stack.enter_context(cache.in_use())
            cache.offer(offered or {}, offered_by)
        with temporary_beside(out) as (file, tmp):
            with writing(out):
                result, entries = _stream_image(root, req, cache, file)
            os.chmod(tmp, 0o644)
            remove_file(out + ".id")  # never beside an image it does not name
            os.replace(tmp, out)
        image_id = "sha512-" + result.digests["sha512"]
        atomic_write(out + ".id", (image_id + "\n").encode())
        if cache is not None:
            cache.record(out, result.names)
            cache.collect()
            warn(PROG, cache.damage_report())
    return PackResult(image_id, entries, result)


def summary(out: str, req: PackRequest, result: PackResult) -> str:
    s = result.stream
    shared = f" ({s.shared} from the cache repository)" if s.shared else ""
    return (f"{os.path.basename(out)}: {result.image_id} ({result.entries} entries, "
            f"{s.size / MiB:.1f} MiB tar -> {s.compressed_size / MiB:.1f} MiB "
            f"{req.compression}; {s.chunks} chunks, {s.reused} from cache{shared})")


# -- the two ways in ----------------------------------------------------------------

def _mount_dir(first_layer: str, out: str) -> str:
    """Where to mount the merged view: beside the layers, one per output."""
    base = os.path.dirname(os.path.dirname(os.path.normpath(first_layer)))
    tag = hashlib.sha256(os.fsencode(os.path.abspath(out))).hexdigest()[:16]
    return os.path.join(base, "mnt", f"pack-{tag}")


def pack_layers(image_file: str, out: str) -> int:
    req, layer_dirs, requested = load_image_file(image_file, out)
    req = _with_base_app(req, layer_dirs, out)
    buildlock.hold_for(layer_dirs[0])
    layers.enter_private_mount_namespace()  # before any thread starts
    watch_for_orphaning()
    mode = layers.choose_mode(requested, os.path.dirname(os.path.normpath(layer_dirs[0])))
    with layers.reading(layer_dirs):
        layerrecord.check(layer_dirs)
        share = _chunk_share(req, layer_dirs[0])
        offered = share.fetch() if share else {}
        view = layers.readonly_view(layer_dirs, mode, _mount_dir(layer_dirs[0], out))
        with view as root:
            result = write_image(root, req, offered, share.where if share else "")
    line = summary(out, req, result)
    s = result.stream
    if share and (not offered or s.reused < s.chunks):  # no entry, or one that lacked chunks
        line += "; " + share.push(out, s)
    print(line)
    return ExitCode.OK


def _chunk_share(req: PackRequest, top_layer: str) -> ChunkShare | None:
    """The cache repository's entry for this pack (a ChunkShare), or None."""
    if req.share is None or req.cache_dir is None:
        return None
    from acigen.helpers.registry.chunkshare import ChunkShare, share_key
    key = share_key(req.share, top_layer, req.compression, req.chunk_size)
    return ChunkShare(req.share, key) if key else None


def _with_base_app(req: PackRequest, layer_dirs: list[str], out: str) -> PackRequest:
    """The app completed from an OCI base's config (helpers/registry/appdefaults.py)."""
    from acigen.helpers.registry.appdefaults import note, with_base_defaults
    manifest, taken = with_base_defaults(req.manifest, layer_dirs)
    if taken:
        print(note(out, taken))
    return dataclasses.replace(req, manifest=manifest)


def _epoch_from_env() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return 0
    if not value.isdigit():
        raise HelperError(f"SOURCE_DATE_EPOCH={value!r}: expected seconds since 1970")
    return int(value)


def pack_by_hand(args: argparse.Namespace) -> int:
    if args.source_date_epoch is not None and args.source_date_epoch < 0:
        raise HelperError("--source-date-epoch: expected seconds since 1970 (>= 0)")
    if args.chunk_size is not None and args.chunk_size <= 0:
        raise HelperError("--chunk-size: expected a positive number of MiB")
    if args.jobs is not None and args.jobs < 1:
        raise HelperError("--jobs: expected at least 1")
    req = PackRequest(
        manifest=load_manifest_file(args.manifest), out=check_out(args.out),
        compression=args.compression,
        epoch=_epoch_from_env() if args.source_date_epoch is None else args.source_date_epoch,
        cache_dir=args.chunk_cache, jobs=args.jobs,
        chunk_size=int(args.chunk_size * MiB) if args.chunk_size else None)
    result = write_image(args.rootfs, req)
    print(summary(args.out, req, result))
    return ExitCode.OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Pack a root filesystem into an ACI.")
    p.add_argument("--image", help="image file written by acigen (ninja's way in)")
    p.add_argument("-o", "--out", required=True, help="the image to write (NAME.aci)")
    p.add_argument("--manifest", help="ACI manifest (JSON) to put in the image")
    p.add_argument("--rootfs", help="directory to pack as rootfs/")
    p.add_argument("-C", "--compression", choices=COMPRESSIONS, default="gzip")
    p.add_argument("--source-date-epoch", type=int, metavar="N",
                   help="clamp mtimes to N (default: $SOURCE_DATE_EPOCH, else 0)")
    p.add_argument("--chunk-cache", metavar="DIR", help="reuse compressed chunks kept here")
    p.add_argument("-j", "--jobs", type=int, help="compress on N threads (default: all cores)")
    p.add_argument("--chunk-size", type=float, metavar="MIB",
                   help="average chunk size (default: 1 for gzip, 16 for xz "
                        "(4 outside usr/), else 4)")
    return p


def _run(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.image:
        if args.manifest or args.rootfs:
            parser.error("--image excludes --manifest and --rootfs")
        return pack_layers(args.image, args.out)
    if not (args.manifest and args.rootfs):
        parser.error("give --image, or --manifest and --rootfs")
    return pack_by_hand(args)


def main(argv: list[str] | None = None) -> int:
    return run_main(PROG, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
