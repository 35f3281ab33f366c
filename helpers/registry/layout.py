"""Local OCI images: an `oci:DIR` layout or an `oci-archive:PATH` (a layout as a tar).

The layout's index.json names the image: its only manifest, or the one for
the build's platform.  Every blob is checked against its digest before it is
used; an archive's blobs are copied out (checked) into a scratch directory.
The archive is read with Python's tarfile, by member name only: nothing in
it is ever written anywhere but into that directory, under its digest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from typing import IO

from acigen.errors import HelperError
from acigen.helpers.registry import media

BLOB_MAX = 1 << 40


class Layout:
    """Blobs of a layout directory or archive, by digest."""

    def __init__(self, transport: str, path: str, scratch: str) -> None:
        self.transport = transport
        self.path = path
        self.scratch = scratch
        self.what = f"{transport}:{path}"
        self._tar: tarfile.TarFile | None = None
        if transport == "oci-archive":
            try:
                self._tar = tarfile.open(path)  # noqa: SIM115 (closed by close())
            except (OSError, tarfile.TarError) as exc:
                raise HelperError(f"{self.what}: not a readable OCI archive ({exc})") from None
        elif not os.path.isdir(path):
            raise HelperError(f"{self.what}: no such directory")

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def open_member(self, name: str) -> IO[bytes] | None:
        if self._tar is None:
            try:
                return open(os.path.join(self.path, name), "rb")
            except FileNotFoundError:
                return None
        for candidate in (name, "./" + name):
            try:
                member = self._tar.getmember(candidate)
            except KeyError:
                continue
            if member.isfile():
                return self._tar.extractfile(member)
        return None

    def read(self, name: str, limit: int) -> bytes:
        src = self.open_member(name)
        if src is None:
            raise HelperError(f"{self.what}: {name} is missing")
        with src:
            data = src.read(limit + 1)
        if len(data) > limit:
            raise HelperError(f"{self.what}: {name} is larger than {limit} bytes")
        return data

    def blob_bytes(self, item: media.Descriptor, limit: int) -> bytes:
        data = self.read(f"blobs/sha256/{item.hex}", limit)
        if hashlib.sha256(data).hexdigest() != item.hex:
            raise HelperError(f"{self.what}: digest mismatch: blob {item.digest}")
        return data

    def blob_file(self, item: media.Descriptor) -> str:
        """A checked file holding blob ITEM."""
        name = f"blobs/sha256/{item.hex}"
        src = self.open_member(name)
        if src is None:
            raise HelperError(f"{self.what}: {name} is missing")
        os.makedirs(self.scratch, mode=0o700, exist_ok=True)
        out_path = os.path.join(self.scratch, item.hex)
        digest = hashlib.sha256()
        with src, open(out_path, "wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != item.hex:
            raise HelperError(f"{self.what}: digest mismatch: blob {item.digest} holds "
                              f"sha256:{digest.hexdigest()}")
        return out_path


def open_image(layout: Layout, platform: tuple[str, str, str | None]
               ) -> tuple[str, media.Descriptor, list[media.Descriptor], bytes]:
    """(manifest digest, config, layers, config bytes) of the layout's image."""
    index = media.load(layout.read("index.json", media.CONFIG_MAX), f"{layout.what} index.json")
    chosen = media.choose(index, platform, layout.what)
    doc = media.load(layout.blob_bytes(chosen, media.CONFIG_MAX), layout.what)
    if media.kind(doc, chosen.media_type, layout.what) in media.INDEXES:
        chosen = media.choose(doc, platform, layout.what)
        doc = media.load(layout.blob_bytes(chosen, media.CONFIG_MAX), layout.what)
    config, layers = media.image_parts(doc, f"{layout.what} ({chosen.digest})")
    return chosen.digest, config, layers, layout.blob_bytes(config, media.CONFIG_MAX)


def remove_scratch(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
