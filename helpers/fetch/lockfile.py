"""NAME.lock.json: the digests of image URLs that the manifest does not pin.

Lives beside the manifest; commit it with the manifest.  Its form:

    {
     "acigen-lock": 1,
     "urls": {
      "https://example.org/rootfs.tar.xz": {"sha256": "<64 hex digits>"}
     }
    }

How it works: an `image` step with a `url` and no `sha256`/`sha512` pin
is downloaded, and its digest is printed and recorded here on the first
build.  Every later build checks the download against the recorded digest:
if the file changed upstream, the build stops with an error naming both
digests, and nothing is replaced.

Manifests built together that share a URL each record it in their own
lock file; all that record it must agree.  To refresh (accept a new
upstream file): delete the URL's entry from NAME.lock.json (from each
manifest's that has it), or the whole file, and build again; the new digest
is printed and recorded.  To pin for good, copy the digest into the step as
`"sha256": "..."`; a pinned URL never consults the lock file.

Several downloads of one build may record at the same time: updates are
serialised with a lock on the file's directory and written atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from typing import Any

from acigen.errors import HelperError
from acigen.fileio import atomic_write, json_bytes

VERSION = 1


@contextlib.contextmanager
def _dir_locked(path: str) -> Iterator[None]:
    directory = os.path.dirname(os.path.abspath(path))
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as src:
            data = json.load(src)
    except FileNotFoundError:
        return {"acigen-lock": VERSION, "urls": {}}
    except ValueError as exc:
        raise HelperError(f"{path}: not valid JSON ({exc})",
                          hint="delete it to record fresh digests") from None
    if not isinstance(data, dict) or not isinstance(data.get("urls"), dict):
        raise HelperError(f"{path}: not an acigen lock file (no \"urls\" object)",
                          hint="delete it to record fresh digests")
    return data


def locked_digest(path: str, url: str) -> str | None:
    """The sha256 recorded for URL, if any."""
    with _dir_locked(path):
        entry = _load(path)["urls"].get(url)
    if entry is None:
        return None
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(digest, str) or len(digest) != 64:
        raise HelperError(f"{path}: the entry for {url} has no valid sha256",
                          hint="delete the entry to record a fresh digest")
    return digest


def record(path: str, url: str, sha256: str) -> None:
    """Record URL's digest (keeping every other entry)."""
    with _dir_locked(path):
        data = _load(path)
        if data["urls"].get(url) == {"sha256": sha256}:
            return
        data["urls"][url] = {"sha256": sha256}
        data["acigen-lock"] = VERSION
        atomic_write(path, json_bytes(data))
