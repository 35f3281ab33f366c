"""--cache-repo: finished layers shared between machines through a registry.

Every layer step (with --cache-repo) computes a **cache key**: a hash of
acigen's version, the step's definition, the parent layer's cache key, the
content (sha256) of every host file the step reads, and, for a downloaded
base, the digest of what was downloaded.  Unlike the chain key (which names
files by path, since ninja watches their content locally), it names content,
so two machines agree on it exactly when the step would see the same inputs.
A step that always runs here adds the host files it found as it ran (the
libraries copy_host_files copied, a Python's standard library).  It is kept
in LAYER/cache-key for the steps above.

A chroot step (cmd, ansible: the slow ones, and the ones that need not give
the same bytes twice) is then looked up in the cache repository REPO, tagged
`acigen-<cache key>`: found, its layer is pulled (into the download cache,
checked against its digest) and applied to the step's fresh layer through the
confined extractor, whiteouts too, instead of running the step.  Not found,
the step runs, and its layer (the overlay upper dir, or in copy mode the
difference from the layer below, in OCI form: helpers/oci/layer.py) is pushed
as one gzip blob (in members that inflate on two cores where it is pulled:
helpers/tar/gzipmembers.py), with an image manifest tagged with the key and
carrying it in the annotation `org.acigen.cache-key`.

The image step fetches the layers of the chroot steps above it ahead, while
it unpacks, and records each manifest found (helpers/registry/prefetch.py):
a step finds its record there and asks the registry nothing.

A cache that cannot be reached, or refuses, is a warning: the step runs (or
its push is skipped), and the build goes on; `--offline` leaves it alone.  A
layer that fails to apply (a hostile one) fails the step: a half-applied
layer cannot be run over.  What the cache holds is
trusted to be what the step made: give --cache-repo only a repository that
only your builds write to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from acigen import __version__
from acigen.errors import HelperError
from acigen.fileio import atomic_write
from acigen.helpers.fetch.pins import file_digest
from acigen.helpers.registry import media
from acigen.imageref import parse

# the registry client (requests), the puller and the extractor are imported where
# used: a step that only keys its layer (the image step) never loads them

if TYPE_CHECKING:
    from acigen.helpers.fetch.cache import Cache
    from acigen.helpers.layers.step import StepContext
    from acigen.helpers.registry.prefetch import Prefetch

KEY_FILE = "cache-key"
RECORDS = "prefetched"  # in the image step's layer: manifests fetched ahead, by key
ANNOTATION = "org.acigen.cache-key"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
NO_CLAMP = 2**33 - 1  # mtimes as they are: pack clamps them to SOURCE_DATE_EPOCH later


_digests: dict[tuple[str, int, int, int, int], str] = {}


def _file_digest(path: str) -> str | None:
    """PATH's sha256, once per process for a file left as it was (the image step
    keys its base archive before unpacking it and again with what it read)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    same = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if same not in _digests:
        _digests[same] = file_digest(path, "sha256")
    return _digests[same]


def cache_key(spec: dict[str, Any]) -> str | None:
    """The layer's cache key, or None when the parent's is unknown."""
    lower = spec.get("lower", [])
    parent = None
    if lower:
        try:
            with open(os.path.join(lower[0], KEY_FILE), encoding="ascii") as src:
                parent = src.read().strip()
        except FileNotFoundError:
            return None
    return key_of(spec, parent)


def key_of(spec: dict[str, Any], parent: str | None) -> str:
    """The cache key of the step SPEC over a parent layer keyed PARENT."""
    step = dict(spec["step"])
    inputs = {path: _file_digest(path) for path in spec["cache"].get("inputs", [])}
    fetched = None
    if "ref" in step:
        with open(step["ref"], encoding="utf-8") as src:
            fetched = json.load(src).get("sha256")
    payload = {"acigen": __version__, "parent": parent, "step": step, "inputs": inputs,
               "fetched": fetched}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest()


def with_reads(key: str, paths: list[str]) -> str:
    """KEY extended by the content of the host files a step read as it ran."""
    if not paths:
        return key
    read = {path: _file_digest(path) for path in sorted(set(paths))}
    text = json.dumps({"key": key, "read": read}, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()


class LayerCache:
    def __init__(self, spec: dict[str, Any]) -> None:
        from acigen.helpers.registry.auth import Settings
        cache = spec["cache"]
        self.repo = parse(cache["repo"])
        self.settings = Settings.from_json(cache.get("registry"))
        self.cache_dir = cache.get("cache_dir")
        self.layer = spec["layer"]
        self.lower = spec.get("lower", [])

    def tag(self, key: str) -> str:
        return f"acigen-{key}"

    def pull(self, key: str, ctx: StepContext) -> str | None:
        """Apply the cached layer for KEY to the step's root: a summary, or None."""
        from acigen.helpers.registry.apply import apply_layers
        try:
            paths = self._fetch(key)
        except HelperError as exc:
            if "no such image" not in str(exc):
                _warn(f"the layer cache {self.repo} cannot be read ({exc}); running the step")
            return None
        if paths is None:
            return None
        ctx.say(f"applying layer {key} from {self.repo}")
        # a half-applied layer cannot be run over: an error here fails the step.  A
        # chroot step cannot make device nodes (no CAP_MKNOD), so its layer has none
        entries, size, _whiteouts = apply_layers(ctx.root, paths, "error", None,
                                                 f"{self.repo} layer {key[:12]}")
        return (f"pulled from the layer cache {self.repo} ({entries} entries, "
                f"{size / 1e6:.1f} MB) instead of running")

    def warm(self, key: str, records: str) -> bool:
        """Bring the cached layer for KEY into the download cache, if the cache
        repository has it, and record its manifest in RECORDS: whether it was
        there (any failure is only a miss here)."""
        try:
            return self._fetch(key, records) is not None
        except HelperError:
            return False

    def _fetch(self, key: str, records: str | None = None) -> list[str] | None:
        """The cached layer's blobs for KEY, in the download cache; None: not there."""
        from acigen.helpers.fetch.cache import Cache
        cache = Cache(self.cache_dir)
        recorded = self._recorded(key)
        if recorded is not None:
            with contextlib.suppress(HelperError):  # gone or damaged: ask the registry
                paths = self._blobs(cache, recorded, key)
                if paths is not None:
                    return paths
        from acigen.helpers.registry.client import Client
        body, _media = Client(self.repo, self.settings).manifest(self.tag(key))
        paths = self._blobs(cache, body, key, warn=records is None)  # the step says it
        if paths is not None and records is not None:
            atomic_write(os.path.join(records, key), body, 0o600)
        return paths

    def _blobs(self, cache: Cache, body: bytes, key: str, warn: bool = True
               ) -> list[str] | None:
        """The blobs of the layer manifest BODY, in the download cache, if it is
        acigen's layer for KEY."""
        from acigen.helpers.registry.pull import Puller
        where = f"{self.repo}:{self.tag(key)}"
        doc = media.load(body, where)
        if doc.get("annotations", {}).get(ANNOTATION) != key:
            if warn:
                _warn(f"{where} is not acigen's layer for that key; running the step")
            return None
        _config, found = media.image_parts(doc, where)
        puller = Puller(cache, self.repo, self.settings, offline=False)
        return [puller.blob(item) for item in found]

    def _recorded(self, key: str) -> bytes | None:
        """The manifest the image step below fetched ahead for KEY, if it did
        (helpers/registry/prefetch.py)."""
        if not self.lower:
            return None
        try:
            with open(os.path.join(self.lower[-1], RECORDS, key), "rb") as src:
                return src.read()
        except FileNotFoundError:
            return None

    def push(self, key: str, ctx: StepContext) -> str:
        """Push the step's own changes as the layer for KEY: a summary."""
        from acigen.helpers.registry.artifact import Artifact, put_artifact
        from acigen.helpers.registry.client import Client
        blob = self.layer + ".cache.tar.gz"
        try:
            size, digest, diff_id = _write_layer(blob, self.layer, self.lower, ctx.root)
            client = Client(self.repo, self.settings, push=True)
            config = json.dumps({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers", "diff_ids": [diff_id]}},
                                sort_keys=True).encode()
            put_artifact(client, self.tag(key), Artifact(blob, digest, size, LAYER_TYPE, config,
                                                         CONFIG_TYPE), (ANNOTATION, key))
        except HelperError as exc:
            _warn(f"the layer could not be pushed to the layer cache {self.repo}: {exc}")
            return "not pushed to the layer cache"
        finally:
            if os.path.exists(blob):
                os.unlink(blob)
        return f"pushed to the layer cache ({size / 1e6:.1f} MB)"


class _HashingFile:
    """A file that hashes what is written to it."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return int(self.out.write(data))

    def flush(self) -> None:
        self.out.flush()


class _Sink:
    """tarstream's Sink: the uncompressed tar, hashed (its diff_id), gzipped."""

    def __init__(self, gz: Any) -> None:
        self.gz = gz
        self.digest = hashlib.sha256()

    def mark(self, key: bytes) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.gz.write(data)


def _write_layer(path: str, layer: str, lower: list[str], root: str) -> tuple[int, str, str]:
    """The step's changes as an OCI layer at PATH: (size, digest, diff_id)."""
    from acigen.helpers.layers import layers
    from acigen.helpers.oci.layer import LayerWriter, write_diff, write_upper
    from acigen.helpers.tar.gzipmembers import MemberWriter
    with open(path, "wb") as raw:
        hashed = _HashingFile(raw)
        gz = MemberWriter(hashed)  # members that inflate on two cores where it is pulled
        sink = _Sink(gz)
        writer = LayerWriter(sink, NO_CLAMP)
        tree = layers.tree(layer)
        if lower and os.path.realpath(root) == os.path.realpath(tree):  # copy mode
            write_diff(writer, tree, layers.tree(lower[0]))
        else:
            write_upper(writer, tree)
        gz.close()
    return hashed.size, "sha256:" + hashed.digest.hexdigest(), \
        "sha256:" + sink.digest.hexdigest()


def _warn(message: str) -> None:
    print(f"acigen: warning: {message}", file=sys.stderr)


Action = Callable[["StepContext"], str]


def _prefetch(spec: dict[str, Any], key: str) -> Prefetch | None:
    """The image step's prefetch of the layers above it, started: helpers/registry/prefetch.py."""
    if not spec["cache"].get("prefetch") or spec["cache"].get("offline"):
        return None
    from acigen.helpers.registry.prefetch import Prefetch
    return Prefetch(spec, key)


def with_layer_cache(action: Action, spec: dict[str, Any]) -> Action:
    """ACTION, keyed and (for chroot steps) shared through the cache repository."""
    if "cache" not in spec:
        return action

    def cached(ctx: StepContext) -> str:
        key = cache_key(spec)
        if key is None:
            return action(ctx)
        key_file = os.path.join(spec["layer"], KEY_FILE)
        if not spec["cache"].get("share") or spec["cache"].get("offline"):
            warming = _prefetch(spec, key)
            summary = action(ctx)  # and what it read from the host (libraries...) counts
            if warming is not None:
                ctx.say(warming.finish())
            atomic_write(key_file, (with_reads(key, ctx.inputs_read) + "\n").encode())
            return summary
        atomic_write(key_file, (key + "\n").encode())
        store = LayerCache(spec)
        pulled = store.pull(key, ctx)
        if pulled is not None:
            return pulled
        summary = action(ctx)
        return f"{summary}; {store.push(key, ctx)}"

    return cached
