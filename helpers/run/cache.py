"""The unpacked images `acigen run` keeps: one root per image ID.

An ACI is addressed by its image ID, `sha512-` + the SHA-512 of its
uncompressed tar.  `acigen run` reads the whole image once to compute it
(and to find the manifest); when CACHE/<image ID>/ exists it was unpacked
from exactly those bytes, so it is used as it is; otherwise the image is
unpacked safely (helpers/unpack/image.py: nothing lands outside the root, device
nodes are skipped since the runtime provides /dev) into a temporary
directory that is renamed into place when complete.

Reading a big image takes seconds, so the ID found for a file is
remembered under CACHE/files/, keyed by the file's path, device, inode,
size, mtime and ctime.  Any write to the file changes its ctime, which no
one can set back, so an unchanged key means unchanged bytes and the image
is not read again.

Layout: CACHE/<image ID>/rootfs/ and CACHE/<image ID>/manifest, and
CACHE/files/<key> holding an image ID.  The cache is
$XDG_CACHE_HOME/acigen/run, else ~/.cache/acigen/run.  A root in the cache
is never written: runs see it through an overlay (see chroot_run/container.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from acigen.errors import HelperError, ManifestError
from acigen.fileio import atomic_write, pretty_json
from acigen.helpers.core.filelock import holding
from acigen.helpers.core.treeremove import remove_tree
from acigen.helpers.layers import layers
from acigen.helpers.tar.decompress import tar_stream
from acigen.helpers.tar.reader import TRAILING_MAX
from acigen.helpers.unpack.image import MAX_MANIFEST, unpack_into_new_dir
from acigen.jsoncheck import Node
from acigen.manifest import parse_document

READ_SIZE = 1 << 20


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "acigen", "run")


@dataclass(frozen=True)
class CachedImage:
    image_id: str
    manifest: dict[str, Any]
    rootfs: str
    unpacked_now: bool


class _HashingReader:
    """A file-like view of a file descriptor that hashes what is read."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.digest = hashlib.sha512()

    def read(self, size: int = -1) -> bytes:
        data = os.read(self.fd, size if size > 0 else READ_SIZE)
        self.digest.update(data)
        return data

    def drain(self, path: str, bounded: bool) -> None:
        """Hash the rest (padding after the end marker); BOUNDED for a
        compressed file, which may decompress to a terabyte of it."""
        left = TRAILING_MAX if bounded else 1 << 62
        while left >= 0 and (data := self.read(READ_SIZE)):
            left -= len(data)
        if left < 0:
            raise HelperError(f"{path}: more than {TRAILING_MAX >> 20} MiB after its "
                              "end-of-archive marker: not an image we accept")


def _member_name(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def identify(path: str) -> tuple[str, dict[str, Any]]:
    """(image ID, manifest) of the ACI at PATH, reading it once.  Every error
    names PATH: a user running several images must see which one is bad."""
    try:
        return _identify(path)
    except HelperError as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        raise HelperError(f"{path}: {exc}", exc.hint) from None


def _identify(path: str) -> tuple[str, dict[str, Any]]:
    manifest: bytes | None = None
    has_rootfs = False
    with tar_stream(path) as (fd, compression):
        reader = _HashingReader(fd)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    name = _member_name(member.name)
                    has_rootfs = has_rootfs or (name == "rootfs" and member.isdir())
                    if name == "manifest" and member.isfile():
                        if member.size > MAX_MANIFEST:
                            raise HelperError(f"{path}: its manifest is over 1 MiB")
                        src = tar.extractfile(member)
                        manifest = src.read() if src else b""
        except tarfile.TarError as exc:
            raise HelperError(f"{path}: not a valid image archive: {exc}") from None
        reader.drain(path, bounded=compression != "tar")
    if manifest is None or not has_rootfs:
        raise HelperError(f"{path}: not an ACI (it needs a manifest and a rootfs/ directory)")
    return "sha512-" + reader.digest.hexdigest(), parse_manifest(path, manifest)


def parse_manifest(path: str, data: bytes) -> dict[str, Any]:
    """The image's manifest, checked as acigen checks the ones it writes."""
    try:
        manifest = parse_document(f"{path}: manifest", data)
        if not isinstance(manifest, dict) or manifest.get("acKind") != "ImageManifest":
            raise HelperError(f"{path}: its manifest is not an appc ImageManifest")
        check_image_manifest(Node(f"{path}: manifest", "", manifest))
    except ManifestError as exc:
        raise HelperError(str(exc)) from None
    return manifest


def check_image_manifest(root: Node) -> None:
    """The checks acigen makes of the manifests it writes, made of an image's
    (any image may be given to acigen run: its fields are read as typed)."""
    from acigen import appc, appc_types

    fields = root.obj(required=("acKind", "name"), optional=appc.TOP_KEYS)
    if "acVersion" in fields:
        appc.check_version(fields["acVersion"])
    appc_types.identifier(fields["name"], "a valid image name (an AC Identifier)")
    for key, check in (("labels", appc.check_labels), ("app", _check_app),
                       ("dependencies", appc.check_dependencies),
                       ("annotations", appc.check_annotations)):
        if key in fields:
            check(fields[key])


def _check_app(app: Node) -> None:
    """The app section; its isolators only as far as acigen run reads them
    (it warns of unknown ones, and their values are the isolator's own
    business: no-new-privileges is a boolean)."""
    from acigen import appc_app

    fields = app.obj(optional=appc_app.APP_KEYS)
    appc_app.check_app(Node(app.file, app.pointer, {
        key: value for key, value in app.value.items() if key != "isolators"}))
    for item in fields["isolators"].items() if "isolators" in fields else ():
        item.obj(required=("name", "value"))["name"].string(non_empty=True)


def file_key(path: str) -> str:
    st = os.stat(path)
    what = f"{os.path.abspath(path)}\0{st.st_dev}:{st.st_ino}:{st.st_size}:" \
           f"{st.st_mtime_ns}:{st.st_ctime_ns}"
    return hashlib.sha256(os.fsencode(what)).hexdigest()


def remembered(cache: str, path: str, key: str) -> tuple[str, dict[str, Any]] | None:
    """(image ID, manifest) known for PATH's bytes when its key was KEY."""
    try:
        with open(os.path.join(cache, "files", key), encoding="utf-8") as src:
            image_id = src.read().strip()
        with open(os.path.join(cache, image_id, "manifest"), "rb") as src:
            return image_id, parse_manifest(path, src.read())
    except (OSError, HelperError):
        return None


def remember(cache: str, key: str, image_id: str) -> None:
    directory = os.path.join(cache, "files")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    atomic_write(os.path.join(directory, key), (image_id + "\n").encode(), mode=0o600)


@contextlib.contextmanager
def cached_image(path: str, cache: str | None = None) -> Iterator[CachedImage]:
    """The image at PATH unpacked in the cache, held (shared) while in use."""
    cache = cache or cache_dir()
    layers.make_private(cache)  # unpacked images: their setuid programs are root's alone
    key = file_key(path)  # before reading: a change while we read gives a new key
    image_id, manifest = remembered(cache, path, key) or identify(path)
    entry = os.path.join(cache, image_id)
    lock = entry + ".lock"
    unpacked_now = False
    with holding(lock, fcntl.LOCK_EX):
        if not os.path.isdir(entry):
            _unpack(path, entry, manifest)
            unpacked_now = True
        remember(cache, key, image_id)
    with holding(lock, fcntl.LOCK_SH):
        if not os.path.isdir(os.path.join(entry, "rootfs")):
            raise HelperError(f"{entry}: the cached image vanished while starting")
        yield CachedImage(image_id, manifest, os.path.join(entry, "rootfs"), unpacked_now)


def _unpack(path: str, entry: str, manifest: dict[str, Any]) -> None:
    tmp = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(entry))
    try:
        unpack_into_new_dir(path, os.path.join(tmp, "rootfs"), "skip")
        with open(os.path.join(tmp, "manifest"), "wb") as out:
            out.write(pretty_json(manifest))
        os.rename(tmp, entry)
    except BaseException:
        with contextlib.suppress(OSError, HelperError):  # iterative: the tree may be deep
            remove_tree(tmp)
        raise
