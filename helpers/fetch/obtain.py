"""acigen-fetch: bring an image's archive into the download cache; write its .ref.

What ninja runs, once per distinct URL (in the `fetch` pool, with restat):

    python -m acigen.helpers.fetch --spec .acigen/fetch/H.json --ref .acigen/fetch/H.ref

The spec, written by acigen:

    {"url": "https://...", "sha256": "<hex>" (or "sha512", or neither),
     "locks": ["NAME.lock.json", ...], "offline": false, "cache_dir": null}

The .ref it writes names the cached file, for the unpack step:

    {"url": ..., "path": "<cache>/fetch/sha256/<hex>", "sha256": ..., "sha512": ...,
     "size": ...}

It is rewritten only when its content changes, so that restat stops the
unpack (and everything after it) when the download did not change.

URLs: http, https and file.  A pinned URL already in the cache makes no
request at all; an unpinned one makes a conditional request (ETag /
Last-Modified) and is checked against the digest in the lock files (that of
every manifest using the URL; helpers/fetch/lockfile.py says how to refresh them),
and recorded in those that lack it.  `offline` builds
only from the cache.  Safe to run concurrently: one lock per URL.

By hand:

    acigen-fetch URL [--sha256 HEX | --sha512 HEX] [--lock FILE ...] [--offline]
                 [--cache-dir DIR] [--ref FILE]
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from acigen.errors import HelperError
from acigen.fileio import json_bytes, read_json, write_if_changed
from acigen.helpers.fetch import lockfile
from acigen.helpers.fetch.cache import Cache, Digests, digests_of
from acigen.helpers.fetch.download import Outcome, download
from acigen.specs import FetchSpec

PROG = "acigen-fetch"


@dataclass
class Fetched:
    digests: Digests
    path: str
    how: str  # what happened, for the summary


def _digests_from(meta: dict[str, Any]) -> Digests:
    return Digests(meta["sha256"], meta["sha512"], meta["size"])


def _check(url: str, digests: Digests, expected: dict[str, str], locks: list[str]) -> None:
    for algo, want in expected.items():
        got = digests.get(algo)
        if got == want:
            continue
        if locks:
            names, verb = " and ".join(locks), "record" if len(locks) > 1 else "records"
            raise HelperError(
                f"{url} changed: {names} {verb} sha256 {want}, the server now sends {got}",
                hint=f"to accept the new file, delete its entry from {names} and build again")
        raise HelperError(f"{url}: {algo} mismatch: the step pins {want}, the download "
                          f"has {got}")


def _from_cache(cache: Cache, spec: FetchSpec, expected: dict[str, str],
                meta: dict[str, Any] | None) -> Digests | None:
    """What the cache alone can answer (pinned, or offline)."""
    if expected and (spec.pins or spec.offline):
        algo, digest = next(iter(sorted(expected.items())))
        known = cache.checked(algo, digest)
        if known is not None:
            _check(spec.url, known, expected, [])
        return known
    if spec.offline and meta:
        return _digests_from(meta)
    return None


def _copy_local(url: str, cache: Cache, cached: dict[str, Any] | None) -> Outcome:
    """file:// URLs: read directly; size, mtime and inode play the ETag."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise HelperError(f"{url}: only local file URLs (file:///path) are supported")
    path = url2pathname(parts.path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise HelperError(f"{url}: {exc.strerror}") from None
    stamp = {"file_stat": f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"}
    if cached and cached.get("file_stat") == stamp["file_stat"]:
        return Outcome(modified=False, validators=stamp)
    cache.set_partial_meta(url, {})
    shutil.copyfile(path, cache.partial(url))
    return Outcome(modified=True, validators=stamp)


def _obtain(cache: Cache, spec: FetchSpec, expected: dict[str, str],
            locks: list[str]) -> Fetched:
    meta = cache.url_meta(spec.url)
    known = _from_cache(cache, spec, expected, meta)
    if known is not None:
        return Fetched(known, cache.object_path("sha256", known.sha256), "cached")
    if spec.offline and cache.dropped:
        raise HelperError(f"{spec.url}: the cached copy {cache.dropped[0]} was damaged "
                          "(removed), and the build is offline",
                          hint="build once online to fetch it again")
    if spec.offline:
        raise HelperError(f"{spec.url} is not in the download cache ({cache.root}), and "
                          "the build is offline", hint="build once online, or fetch it by hand")
    # a conditional request only for the copy we would accept anyway
    usable = meta if meta and all(meta.get(a) == d for a, d in expected.items()) else None
    if urlsplit(spec.url).scheme == "file":
        outcome = _copy_local(spec.url, cache, usable)
    else:
        outcome = download(spec.url, cache, usable)
    if not outcome.modified:
        assert usable is not None
        digests = _digests_from(usable)
        return Fetched(digests, cache.object_path("sha256", digests.sha256), "not modified")
    partial = cache.partial(spec.url)
    digests = digests_of(partial)
    try:
        _check(spec.url, digests, expected, locks)
    except HelperError:
        cache.drop_partial(spec.url)  # keep nothing of a mismatching download
        raise
    path = cache.store(partial, digests)
    cache.drop_partial(spec.url)
    cache.set_url_meta(spec.url, digests, outcome.validators)
    verb = "copied" if urlsplit(spec.url).scheme == "file" else "downloaded"
    how = f"{verb} {_size(digests.size)}"
    if outcome.resumed:
        how += " (resumed)"
    if outcome.retries:
        how += f" after {outcome.retries} retr{'y' if outcome.retries == 1 else 'ies'}"
    return Fetched(digests, path, how)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def fetch(spec: FetchSpec) -> tuple[dict[str, Any], str]:
    """Bring SPEC's URL into the cache: (the ref, a summary line)."""
    cache = Cache(spec.cache_dir)
    if spec.url.startswith("docker://"):
        from acigen.helpers.registry.pull import fetch_registry
        options = {"platform": spec.platform, "registry": spec.registry}
        return fetch_registry(spec.url, options, cache, spec.offline, spec.locks)
    with cache.locked(spec.url):
        recorded = {} if spec.pins else {lock: lockfile.locked_digest(lock, spec.url)
                                         for lock in spec.locks}
        holders = _agreeing_holders(spec.url, recorded)
        expected = spec.pins or ({"sha256": recorded[holders[0]]} if holders else {})
        fetched = _obtain(cache, spec, expected, holders)
        summary = f"{spec.url}: {fetched.how}, sha256 {fetched.digests.sha256}"
        missing = [lock for lock, digest in recorded.items() if digest is None]
        for lock in missing:
            lockfile.record(lock, spec.url, fetched.digests.sha256)
        if missing:
            summary += f" (recorded in {', '.join(missing)})"
        elif not spec.pins and not spec.locks:
            summary += " (not pinned)"
    ref = {"url": spec.url, "path": fetched.path, "sha256": fetched.digests.sha256,
           "sha512": fetched.digests.sha512, "size": fetched.digests.size}
    return ref, summary


def refetch(ref_path: str, problem: str) -> dict[str, Any]:
    """Fetch again what the ref at REF_PATH names (the unpack found its copy
    damaged or gone: PROBLEM); the fetch spec lies beside it.  The new ref."""
    spec_path = ref_path.removesuffix(".ref") + ".json"
    if not os.path.isfile(spec_path):
        raise HelperError(f"{problem}, and {spec_path} (how to fetch it) is missing",
                          hint="run acigen again, then the build")
    spec = FetchSpec.from_json(read_json(spec_path), spec_path)
    ref, _summary = fetch(spec)
    write_if_changed(ref_path, json_bytes(ref))
    return ref


def _agreeing_holders(url: str, recorded: dict[str, str | None]) -> list[str]:
    """The lock files that record URL's digest; they must all record the same."""
    holders = [lock for lock, digest in recorded.items() if digest is not None]
    if len({recorded[lock] for lock in holders}) > 1:
        said = "; ".join(f"{lock} records sha256 {recorded[lock]}" for lock in holders)
        raise HelperError(f"{url}: the lock files disagree: {said}",
                          hint="delete the stale entry, or the URL's entries from all of "
                               "them to accept what the server sends now")
    return holders
