"""The download cache shared by all builds: content-addressed, locked per URL.

    CACHE/fetch/sha256/<hex>        the downloaded files, named by content
    CACHE/fetch/sha512/<hex>        hard links to the same files
    CACHE/fetch/urls/<key>.json     per URL: its digests, ETag, Last-Modified
    CACHE/fetch/partial/<key>       an interrupted download (+ .json: its validator)
    CACHE/fetch/locks/<key>.lock    held while a URL is fetched

<key> is the sha256 of the URL.  CACHE is `cache_dir` from the fetch spec,
else $XDG_CACHE_HOME/acigen, else ~/.cache/acigen (of the user running the
build: root's under sudo).  A download grows in partial/ (where an
interrupted one resumes); it enters sha256/ only after its digests were
computed and checked against the pin, by rename, so a reader never sees
half a file, and the wrong content never gets a name.  A cached file is
read and checked against its name whenever a build uses it: a damaged one
(cut short by a full disk, changed by hand) is removed with its other
name, and fetched again.  Nothing else is ever removed automatically;
deleting CACHE/fetch is always safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from acigen.fileio import atomic_write, json_bytes
from acigen.helpers.core.filelock import holding
from acigen.helpers.fetch.pins import file_digest

ALGORITHMS = ("sha256", "sha512")


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "acigen")


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


@dataclass(frozen=True)
class Digests:
    sha256: str
    sha512: str
    size: int

    def get(self, algo: str) -> str:
        return self.sha256 if algo == "sha256" else self.sha512


def digests_of(path: str) -> Digests:
    """Both digests in one pass over the file, on two cores: hashlib lets go of
    the GIL while it hashes, so sha512 runs in a thread beside sha256."""
    from concurrent.futures import ThreadPoolExecutor
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    size = 0
    with open(path, "rb", buffering=0) as src, ThreadPoolExecutor(1) as beside:
        while chunk := src.read(1 << 20):
            other = beside.submit(sha512.update, chunk)
            sha256.update(chunk)
            other.result()  # in order: the next chunk waits for this one
            size += len(chunk)
    return Digests(sha256.hexdigest(), sha512.hexdigest(), size)


class Cache:
    def __init__(self, root: str | None) -> None:
        self.root = os.path.join(os.path.abspath(root or default_cache_dir()), "fetch")
        self._checked: dict[str, Digests] = {}  # path -> digests, read once per run
        self._found: set[str] = set()  # checked by the digest they are named by
        self.dropped: list[str] = []  # damaged files removed
        for sub in (*ALGORITHMS, "urls", "partial", "locks"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    # -- objects ------------------------------------------------------------

    def object_path(self, algo: str, digest: str) -> str:
        return os.path.join(self.root, algo, digest)

    def find(self, algo: str, digest: str) -> str | None:
        """The cached file named ALGO/DIGEST, if it is there and intact (checked
        by that digest alone: a layer's sha512 would double the hashing)."""
        path = self.object_path(algo, digest)
        if path in self._checked or path in self._found:
            return path
        if not os.path.isfile(path):
            return None
        if file_digest(path, algo) != digest:
            self._drop(path)
            return None
        self._found.add(path)
        return path

    def checked(self, algo: str, digest: str) -> Digests | None:
        """The digests of the cached file ALGO/DIGEST, read and checked
        against its name; a damaged file is dropped (None)."""
        path = self.object_path(algo, digest)
        if path in self._checked:
            return self._checked[path]
        if not os.path.isfile(path):
            return None
        actual = digests_of(path)
        if actual.get(algo) != digest:
            self._drop(path)
            return None
        self._checked[path] = actual
        return actual

    def _drop(self, path: str) -> None:
        """Remove PATH and its other names (hard links in the other folder)."""
        st = os.stat(path)
        for algo in ALGORITHMS:
            folder = os.path.join(self.root, algo)
            with os.scandir(folder) as names:
                for entry in names:
                    same = entry.inode() == st.st_ino and entry.stat().st_dev == st.st_dev
                    if same:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
        self.dropped.append(path)

    def store(self, path: str, digests: Digests) -> str:
        """Move the verified file at PATH into the cache; its final path."""
        final = self.object_path("sha256", digests.sha256)
        alias = self.object_path("sha512", digests.sha512)
        os.chmod(path, 0o644)
        # Both names are linked from PATH, which is ours alone (its URL is locked):
        # linking from FINAL fails with ENOENT when another fetch of the same file
        # replaces FINAL in between.  Same content under the same name: a race
        # between two stores is harmless, and a name already there is replaced (it
        # may be damaged).
        tmp = alias + f".tmp-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # left by a killed fetch whose pid we now have
        os.link(path, tmp)
        os.replace(tmp, alias)
        os.replace(path, final)
        self._checked[final] = self._checked[alias] = digests
        return final

    # -- per URL ------------------------------------------------------------

    def url_meta(self, url: str) -> dict[str, Any] | None:
        """What we know of URL's last download, if its file is still cached."""
        meta = _read_json(os.path.join(self.root, "urls", url_key(url) + ".json"))
        if not meta or meta.get("url") != url or not self.find("sha256", meta.get("sha256", "")):
            return None
        return meta

    def set_url_meta(self, url: str, digests: Digests, validators: dict[str, str]) -> None:
        meta = {"url": url, "sha256": digests.sha256, "sha512": digests.sha512,
                "size": digests.size, **validators}
        atomic_write(os.path.join(self.root, "urls", url_key(url) + ".json"), json_bytes(meta))

    def partial(self, url: str) -> str:
        return os.path.join(self.root, "partial", url_key(url))

    def partial_meta(self, url: str) -> dict[str, Any] | None:
        meta = _read_json(self.partial(url) + ".json")
        return meta if meta and meta.get("url") == url else None

    def set_partial_meta(self, url: str, validators: dict[str, str]) -> None:
        atomic_write(self.partial(url) + ".json", json_bytes({"url": url, **validators}))

    def drop_partial(self, url: str) -> None:
        for path in (self.partial(url), self.partial(url) + ".json"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    @contextlib.contextmanager
    def locked(self, url: str) -> Iterator[None]:
        """One fetch of URL at a time, across processes (other URLs go on)."""
        with holding(os.path.join(self.root, "locks", url_key(url) + ".lock"), fcntl.LOCK_EX):
            yield


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as src:
            return json.load(src)
    except (FileNotFoundError, ValueError):
        return None
