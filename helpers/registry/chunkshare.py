"""--cache-repo for the pack: an image's compressed chunks shared between machines.

The pack compresses an image in chunks, each kept in the local chunk cache
under the hash of its uncompressed bytes (helpers/tar/chunks.py).  With
--cache-repo, a machine that compressed chunks itself then pushes the image
(its chunks one after the other: the compressed image is nothing else) as one
blob, with an index (each chunk's name and compressed size) as the config,
tagged `acigen-pack-KEY`.  KEY hashes acigen's version, the top layer's cache
key (helpers/registry/layercache.py) and the compression settings, so a second
machine whose layers have the same cache keys finds the entry; before it
packs, it pulls both blobs (checked against their digests, into the download
cache) and offers the chunks to its chunk cache.

Nothing in the entry is trusted: an offered chunk is used only when it expands
to exactly the bytes the pack is about to compress (one stream as acigen
writes it, nothing after it; ChunkCache.from_shared), so a damaged or hostile
entry costs time, never content; such chunks are compressed here, with a
warning.  (Another valid encoding of the right bytes would pass: the image's
content and ID are right, its compressed bytes then not a clean build's.)
An unreachable or refusing cache is a warning and the pack goes on.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import sys
from typing import Any

from acigen import __version__
from acigen.errors import HelperError
from acigen.helpers.fetch.cache import Cache
from acigen.helpers.fetch.pins import file_digest
from acigen.helpers.registry import media
from acigen.helpers.registry.artifact import Artifact, put_artifact
from acigen.helpers.registry.auth import Settings
from acigen.helpers.registry.client import Client
from acigen.helpers.registry.layercache import KEY_FILE
from acigen.helpers.registry.pull import Puller
from acigen.helpers.tar.chunks import ChunkedResult, codec
from acigen.imageref import parse

ANNOTATION = "org.acigen.pack-key"
INDEX_TYPE = "application/vnd.acigen.chunk-index.v1+json"
CHUNKS_TYPE = "application/vnd.acigen.chunks.v1"
INDEX_MAX = 64 << 20
CHUNK_NAME = re.compile(r"[0-9a-f]{64}\.[A-Za-z0-9.-]{1,64}")


def share_key(share: dict[str, Any], top_layer: str, compression: str,
              chunk_size: int | None) -> str | None:
    """The entry's key, or None when the top layer has no cache key."""
    if compression == "none" or share.get("offline"):
        return None
    try:
        with open(os.path.join(top_layer, KEY_FILE), encoding="ascii") as src:
            top = src.read().strip()
    except FileNotFoundError:
        return None
    payload = {"acigen": __version__, "top": top, "codec": codec(compression).tag,
               "chunk_size": chunk_size}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest()


class ChunkShare:
    def __init__(self, share: dict[str, Any], key: str) -> None:
        self.repo = parse(share["repo"])
        self.settings = Settings.from_json(share.get("registry"))
        self.cache_dir = share.get("cache_dir")
        self.key = key
        self.tag = f"acigen-pack-{key}"
        self.where = f"{self.repo}:{self.tag}"

    def fetch(self) -> dict[str, memoryview]:
        """The entry's chunks by name (not yet checked); {} when there is none."""
        try:
            return self._fetch()
        except HelperError as exc:
            if "no such image" not in str(exc):
                _warn(f"the layer cache {self.repo} cannot be read ({exc}); "
                      "compressing the image here")
            return {}

    def _fetch(self) -> dict[str, memoryview]:
        body, _media = Client(self.repo, self.settings).manifest(self.tag)
        doc = media.load(body, self.where)
        layers = doc.get("layers")
        if doc.get("annotations", {}).get(ANNOTATION) != self.key or \
                not isinstance(layers, list) or len(layers) != 1:
            raise HelperError(f"{self.where} is not acigen's chunks for that key")
        index = media.descriptor(doc.get("config"), self.where)
        chunks = media.descriptor(layers[0], self.where)
        if index.media_type != INDEX_TYPE or chunks.media_type != CHUNKS_TYPE or \
                index.size > INDEX_MAX:
            raise HelperError(f"{self.where} is not acigen's chunks for that key")
        puller = Puller(Cache(self.cache_dir), self.repo, self.settings, offline=False)
        with open(puller.blob(index), "rb") as src:
            table = _index(src.read(), self.where)
        data = _mapped(puller.blob(chunks))
        if sum(size for _name, size in table) != len(data):
            raise HelperError(f"{self.where}: its index does not add up to its chunks")
        offered, at = {}, 0
        for name, size in table:
            offered.setdefault(name, data[at:at + size])
            at += size
        return offered

    def push(self, image: str, result: ChunkedResult) -> str:
        """Push IMAGE (the chunks of RESULT) as the entry: a summary."""
        try:
            if sum(result.blob_sizes) != os.path.getsize(image):
                return "chunks not shared (the image is not its chunks alone)"
            client = Client(self.repo, self.settings, push=True)
            digest = "sha256:" + file_digest(image, "sha256")
            size = os.path.getsize(image)
            table = json.dumps({"chunks": [list(pair) for pair in
                                           zip(result.names, result.blob_sizes, strict=True)]},
                               separators=(",", ":")).encode()
            put_artifact(client, self.tag, Artifact(image, digest, size, CHUNKS_TYPE, table,
                                                    INDEX_TYPE), (ANNOTATION, self.key))
        except (HelperError, OSError) as exc:
            _warn(f"the image's chunks could not be pushed to the layer cache {self.repo}: "
                  f"{exc}")
            return "chunks not shared"
        return f"chunks pushed to the cache repository ({size / 1e6:.1f} MB)"


def _mapped(path: str) -> memoryview:
    """PATH's bytes, mapped (an image may be larger than the memory to spare)."""
    with open(path, "rb") as src:
        if os.fstat(src.fileno()).st_size == 0:
            return memoryview(b"")
        return memoryview(mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ))


def _index(body: bytes, where: str) -> list[tuple[str, int]]:
    """The (name, size) pairs of an index blob, checked for form."""
    doc = media.load(body, f"{where}: the chunk index")
    pairs = doc.get("chunks")
    if not isinstance(pairs, list):
        raise HelperError(f"{where}: the chunk index has no chunks list")
    out = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
                and CHUNK_NAME.fullmatch(pair[0]) and type(pair[1]) is int and pair[1] > 0):
            raise HelperError(f"{where}: the chunk index has an entry {str(pair)[:80]!r}")
        out.append((pair[0], pair[1]))
    return out


def _warn(message: str) -> None:
    print(f"acigen: warning: {message}", file=sys.stderr)
