"""acigen-unpack: the image step; unpack a tar archive or an ACI into a root.

The image step (as acigen writes it into the step file):

    {"type": "image", "path": "rootfs.tar.gz"}            a local archive
    {"type": "image", "ref": ".acigen/fetch/H.ref"}       what acigen-fetch got
    optional "sha256" / "sha512": the archive's digest; checked before unpacking
    "devices": "skip" (acigen's default) | true | false
    optional "max_size": the most bytes the uncompressed archive may hold

`max_size` bounds what a small compressed archive may cost (2 MiB of gzip
can inflate to 2 GiB): the member that would pass it is named in the error.

`devices`: an archive's character and block device nodes are left out with
"skip" (an image rarely needs them: the container runtime provides /dev),
created as they are with `true`, an error with `false` (and by hand, where
`--devices` defaults to error).
FIFOs are always created.

The archive may be a tar file, plain or compressed with gzip, bzip2, xz or
zstd (recognised by content, not by name), or an ACI: when its first entry
(after an optional `./`) is `manifest` or `rootfs`, it is read as an ACI,
its `rootfs/` becomes the root and its `manifest` is ignored, so an image
can start from another image.  Safety rules: see helpers/tar/untar.py.

By hand:
    acigen-unpack [--devices error|keep|skip] [--max-size BYTES] [--sha256 HEX] ARCHIVE DIR
unpacks into DIR (which must not exist, or be empty), all or nothing.
    python -m acigen.helpers.unpack --step STEPFILE --stamp STAMP
is what ninja runs (see helpers/layers/step.py).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

from acigen.errors import HelperError
from acigen.fileio import read_json
from acigen.helpers.core.treeremove import remove_tree
from acigen.helpers.fetch.pins import file_digest, verify
from acigen.helpers.rootfs.root import Root, split
from acigen.helpers.tar.decompress import tar_stream
from acigen.helpers.tar.reader import Member, Stream, TarReader
from acigen.helpers.tar.untar import Extractor, Stats, extract
from acigen.specs import pins_of

if TYPE_CHECKING:
    from acigen.helpers.layers.step import StepContext

PROG = "acigen-unpack"


class Unpacked:
    def __init__(self, stats: Stats, compression: str, aci: bool) -> None:
        self.stats = stats
        self.compression = compression
        self.aci = aci

    def summary(self, name: str) -> str:
        what = "ACI" if self.aci else f"{self.compression} archive" \
            if self.compression != "tar" else "tar archive"
        line = f"unpacked {name} ({what}): {self.stats.members} entries, " \
               f"{self.stats.bytes / 1e6:.1f} MB"
        if self.stats.skipped_devices:
            line += f", {self.stats.skipped_devices} device nodes skipped"
        return line


def unpack_archive(path: str, root_dir: str, devices: str = "error",
                   max_size: int | None = None) -> Unpacked:
    """Unpack the archive at PATH into ROOT_DIR (see the module docstring)."""
    umask = os.umask(0)  # entries get exactly the archive's modes, without a chmod each
    try:
        with Root(root_dir) as root, tar_stream(path) as (fd, compression):
            stream = Stream(fd)
            reader = TarReader(stream, max_size)
            extractor = Extractor(root, devices)
            try:
                members, aci = _root_members(reader)
                stats = extract(reader, members, extractor)
                if compression != "tar":  # let the decompressor finish and judge its input
                    stream.drain()
            finally:
                extractor.close()
    finally:
        os.umask(umask)
    return Unpacked(stats, compression, aci)


# -- ACIs -----------------------------------------------------------------

MAX_MANIFEST = 1 << 20  # acigen run refuses a bigger one too


def _root_members(reader: TarReader) -> tuple[Iterable[Member], bool]:
    """The members to apply, and whether the archive is an ACI."""
    members = iter(reader)
    leading: list[Member] = []
    first = next(members, None)
    while first is not None and first.kind == "dir" and not split(first.name):
        leading.append(first)  # `./`: no data, safe to hold back
        first = next(members, None)
    if first is None:
        return leading, False
    if split(first.name)[:1] in (["manifest"], ["rootfs"]):
        return _aci_members(chain([first], members)), True
    return chain(leading, [first], members), False


def _aci_members(members: Iterable[Member]) -> Iterator[Member]:
    """An ACI's `rootfs/` entries, renamed relative to it; `manifest` dropped."""
    for member in members:
        parts = split(member.name)
        if parts == ["manifest"]:
            if member.size > MAX_MANIFEST:  # its data is skipped: bound what that reads
                raise HelperError(f"member {member.name!r}: an ACI's manifest is over 1 MiB")
            continue
        if parts[:1] != ["rootfs"]:
            raise HelperError(f"member {member.name!r}: an ACI holds only 'manifest' and "
                              "'rootfs/'")
        member.name = "/".join(parts[1:])
        if member.kind == "hardlink":
            target = split(member.linkname)
            if target[:1] != ["rootfs"]:
                raise HelperError(f"member {'/'.join(parts)!r}: hard link to "
                                  f"{member.linkname!r}, outside the ACI's rootfs/")
            member.linkname = "/".join(target[1:])
        yield member


# -- the step -------------------------------------------------------------

def devices_policy(value: object) -> str:
    """The step's `devices` field: false | true | "skip"."""
    policy = {False: "error", None: "error", True: "keep", "skip": "skip"}.get(value)  # type: ignore[call-overload]
    if policy is None:
        raise HelperError(f'devices must be true, false or "skip", got {value!r}')
    return policy


def max_size_of(value: object) -> int | None:
    """The step's `max_size` field: absent, or a positive number of bytes."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HelperError(f"max_size must be a positive number of bytes, got {value!r}")
    return value


def archive_of(step: dict[str, Any]) -> tuple[str, str]:
    """(path of the archive to unpack, how to name it), checked."""
    pins = pins_of(step)
    if ("path" in step) == ("ref" in step):
        raise HelperError("an image step needs exactly one of path and ref")
    if "path" in step:
        path = step["path"]
        if not os.path.exists(path) or os.path.isdir(path):
            raise HelperError(f"{path}: no such file")
        verify(path, pins)
        return path, path
    ref = read_json(step["ref"])
    if not isinstance(ref, dict) or not all(isinstance(ref.get(key), str)
                                            for key in ("url", "path", "sha256")):
        raise HelperError(f"{step['ref']}: not a reference written by acigen-fetch",
                          hint="remove it and build again")
    url, path = ref["url"], ref["path"]
    for algo, expected in pins.items():
        if ref.get(algo) != expected:
            raise HelperError(f"{step['ref']} is for {algo} {ref.get(algo)}, the step pins "
                              f"{expected}", hint="rebuild: the fetch step comes first")
    if not os.path.isfile(path) or file_digest(path, "sha256") != ref["sha256"]:
        from acigen.helpers.fetch.obtain import refetch  # the cached copy is damaged or gone
        ref = refetch(step["ref"], f"{url}: the cached copy {path} is not the file with "
                                   f"sha256 {ref['sha256']}")
        path = ref["path"]
        verify(path, {"sha256": ref["sha256"]}, f"{url}: cached copy {path}")
    return path, url


def image_step_reads(step: dict[str, Any]) -> list[str]:
    """The host files an image step reads (a local archive, OCI archive or
    layout; a download is keyed by its digest instead): its depfile and its
    cache key (helpers/registry/prefetch.py computes that key ahead) name them."""
    if "oci" in step:
        from acigen.imageref import parse
        return [] if "ref" in step else [parse(step["oci"]).path]
    return [step["path"]] if "path" in step else []


def image_action(ctx: StepContext) -> str:
    step = ctx.step
    ctx.inputs_read += image_step_reads(step)
    if "oci" in step:  # an OCI image's layers: helpers/registry/image.py
        from acigen.helpers.registry.image import oci_action
        return oci_action(ctx)
    devices = devices_policy(step.get("devices", False))
    max_size = max_size_of(step.get("max_size"))
    path, name = archive_of(step)
    ctx.say(f"unpacking {name} ({path}) into {ctx.root}")
    result = unpack_archive(path, ctx.root, devices, max_size)
    ctx.say(f"entries by type: {result.stats.kinds}")
    return result.summary(os.path.basename(name.rstrip("/")) or name)


# -- by hand --------------------------------------------------------------

def unpack_into_new_dir(path: str, dest: str, devices: str,
                        max_size: int | None = None) -> Unpacked:
    """Unpack into DEST (absent or empty) all or nothing: into a temporary
    sibling first, renamed into place when complete."""
    if os.path.lexists(dest) and (not os.path.isdir(dest) or os.path.islink(dest)
                                  or os.listdir(dest)):
        raise HelperError(f"{dest} exists and is not an empty directory")
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.tmp-", dir=parent)
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        result = unpack_archive(path, tmp, devices, max_size)
        os.rename(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError, HelperError):  # iterative: the tree may be deep
            remove_tree(tmp)
        raise
    return result
