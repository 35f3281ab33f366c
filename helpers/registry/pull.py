"""A docker:// reference into the download cache: what the fetch edge runs.

The manifest (or index), the image manifest for the build's platform, the
config and every layer are blobs named by their sha256, and the download
cache (helpers/fetchcache.py) is content-addressed by sha256: each is kept
there under its digest, checked before it gets that name.  So a blob two
images share is downloaded once, a pinned reference whose blobs are cached
makes no request at all, and `--offline` builds from the cache alone.

A tag is resolved by asking the registry for its manifest; the digest is
recorded in NAME.lock.json as an unpinned URL's is (helpers/lockfile.py),
and later builds stop with one line when the tag moved.  Offline, a tag is
what the lock file records, else what this cache last resolved it to.

The .ref written for the unpack step:

    {"url": REF, "path": <cached manifest or index>, "sha256": ..., "sha512": ...,
     "size": ..., "oci": {"manifest": "sha256:...", "config": <path>,
     "layers": [<path>, ...]}}
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from acigen.errors import HelperError
from acigen.helpers.fetch import lockfile
from acigen.helpers.fetch.cache import Cache, Digests, digests_of
from acigen.helpers.registry import media
from acigen.helpers.registry.auth import Settings
from acigen.imageref import Reference, parse

if TYPE_CHECKING:  # the client (requests: ~60 ms) is loaded only when a blob is missing
    from acigen.helpers.registry.client import Client

HOST_PLATFORM = ("linux", "amd64", None)


class Puller:
    """Blobs of one reference into CACHE, from the registry only when missing."""

    def __init__(self, cache: Cache, ref: Reference, settings: Settings,
                 offline: bool) -> None:
        self.cache = cache
        self.ref = ref
        self.settings = settings
        self.offline = offline
        self._client: Client | None = None
        self.downloaded = 0  # bytes

    @property
    def client(self) -> Client:
        if self._client is None:
            from acigen.helpers.registry.client import Client
            self._client = Client(self.ref, self.settings)
        return self._client

    def cached(self, hex_digest: str) -> str | None:
        return self.cache.find("sha256", hex_digest)

    def missing_offline(self, what: str) -> HelperError:
        return HelperError(f"{self.ref}: {what} is not in the download cache "
                           f"({self.cache.root}), and the build is offline",
                           hint="build once online to fetch it")

    def keep(self, data: bytes | None, hex_digest: str | None, what: str,
             fill: Any = None) -> Digests:
        """Put DATA (or what FILL writes) into the cache, if it has HEX_DIGEST
        (when given); a mismatch keeps nothing."""
        key = f"{self.ref}#{hex_digest or what}"
        partial = self.cache.partial(key)
        # one process at a time per blob (two builds, or a step and the image
        # step fetching ahead, share the partial name); 0600 whatever the umask
        # (the image step unpacks with umask 0 while it fetches ahead)
        with self.cache.locked(key):
            stored = self.cache.checked("sha256", hex_digest) if hex_digest else None
            if stored is not None:  # by another process, while this one waited
                return stored
            try:
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                             0o600)
                with open(fd, "wb") as out:
                    if data is not None:
                        out.write(data)
                    else:
                        fill(out)
                digests = digests_of(partial)
                if hex_digest is not None and digests.sha256 != hex_digest:
                    raise HelperError(f"{self.ref}: digest mismatch: {what} should be sha256:"
                                      f"{hex_digest}, the registry sent sha256:"
                                      f"{digests.sha256}")
                self.cache.store(partial, digests)
                self.downloaded += digests.size
                return digests
            finally:
                self.cache.drop_partial(key)

    def manifest(self, digest: str) -> tuple[bytes, str]:
        """The manifest or index with DIGEST (sha256:HEX), cached or fetched."""
        hex_digest = digest.split(":", 1)[1]
        path = self.cached(hex_digest)
        if path is None:
            if self.offline:
                raise self.missing_offline(f"manifest {digest}")
            body, _media = self.client.manifest(digest)
            self.keep(body, hex_digest, f"manifest {digest}")
            path = self.cache.object_path("sha256", hex_digest)
        with open(path, "rb") as src:
            return src.read(), ""

    def blob(self, item: media.Descriptor) -> str:
        """The cached path of blob ITEM, fetched if missing."""
        path = self.cached(item.hex)
        if path is not None:
            return path
        if self.offline:
            raise self.missing_offline(f"blob {item.digest}")
        self.keep(None, item.hex, f"blob {item.digest}",
                  lambda out: self.client.blob_into(item.digest, out, item.size))
        return self.cache.object_path("sha256", item.hex)


def _resolve_top(puller: Puller, expected: str | None, holders: list[str],
                 url: str) -> tuple[str, str]:
    """(sha256 hex of what the reference names now, how it was found)."""
    ref, cache = puller.ref, puller.cache
    if expected and (ref.digest or puller.offline) and puller.cached(expected):
        return expected, "cached"
    if puller.offline:
        if expected:
            raise puller.missing_offline(f"manifest sha256:{expected}")
        meta = cache.url_meta(url)
        if meta is None:
            raise puller.missing_offline("the tag")
        return str(meta["sha256"]), "cached"
    body, _media = puller.client.manifest(ref.reference)
    found = hashlib.sha256(body).hexdigest()
    if expected and found != expected:
        if ref.digest:
            raise HelperError(f"{ref}: digest mismatch: the registry sent sha256:{found}")
        names = " and ".join(holders)
        raise HelperError(f"{url} changed: {names} records sha256 {expected}, the registry "
                          f"now has sha256 {found}",
                          hint=f"to accept the new image, delete its entry from {names} "
                               "and build again")
    digests = puller.keep(body, found, "the manifest")
    cache.set_url_meta(url, digests, {})
    return found, "resolved"


def resolve(puller: Puller, top: str, platform: tuple[str, str, str | None]
            ) -> tuple[str, media.Descriptor, list[media.Descriptor]]:
    """(image manifest digest, config, layers) of the cached TOP (hex)."""
    what = str(puller.ref)
    body, _ = puller.manifest(f"sha256:{top}")
    doc = media.load(body, what)
    digest = f"sha256:{top}"
    if media.kind(doc, "", what) in media.INDEXES:
        chosen = media.choose(doc, platform, what)
        digest = chosen.digest
        body, _ = puller.manifest(digest)
        doc = media.load(body, f"{what} ({digest})")
        if media.kind(doc, chosen.media_type, what) not in media.MANIFESTS:
            raise HelperError(f"{what}: {digest} is an index inside an index")
    config, layers = media.image_parts(doc, f"{what} ({digest})")
    return digest, config, layers


def fetch_registry(url: str, options: dict[str, Any], cache: Cache, offline: bool,
                   locks: list[str]) -> tuple[dict[str, Any], str]:
    """Bring the image URL names into CACHE: (the ref, a summary line)."""
    from acigen.helpers.fetch.obtain import _agreeing_holders
    ref = parse(url)
    if ref.transport != "docker":
        raise HelperError(f"{url}: only docker:// references are fetched")
    platform_ = options.get("platform") or HOST_PLATFORM
    platform = (platform_[0], platform_[1], platform_[2] if len(platform_) > 2 else None)
    puller = Puller(cache, ref, Settings.from_json(options.get("registry")), offline)
    with cache.locked(url):
        recorded = {} if ref.digest else {lock: lockfile.locked_digest(lock, url)
                                          for lock in locks}
        holders = _agreeing_holders(url, recorded)
        expected = ref.digest.split(":")[1] if ref.digest else \
            (recorded[holders[0]] if holders else None)
        top, how = _resolve_top(puller, expected, holders, url)
        digest, config, layers = resolve(puller, top, platform)
        paths = [puller.blob(item) for item in [config, *layers]]
        missing = [lock for lock, found in recorded.items() if found is None]
        for lock in missing:
            lockfile.record(lock, url, top)
    top_path = cache.object_path("sha256", top)
    digests = cache.checked("sha256", top)
    assert digests is not None
    summary = f"{url}: {how}, sha256 {top}, {len(layers)} layers"
    if puller.downloaded:
        summary += f", downloaded {puller.downloaded / 1e6:.1f} MB"
    if missing:
        summary += f" (recorded in {', '.join(missing)})"
    ref_json = {"url": url, "path": top_path, "sha256": top, "sha512": digests.sha512,
                "size": digests.size,
                "oci": {"manifest": digest, "config": paths[0], "layers": paths[1:]}}
    return ref_json, summary
