"""--cache-repo: the image step brings in the cached layers of the steps above it.

A second machine's build would otherwise ask the cache repository for each
chroot step's layer when that step starts, one after another, after the
base is unpacked.  But a cache key names a step's inputs, not the layers
below it (helpers/registry/layercache.py), so the keys of the chroot steps
above an image step are known before any of them runs: acigen lists their
step files in the image step's spec (`cache.prefetch`), and the image step
fetches their layers into the download cache in a thread while it unpacks
its base.  Each step then finds its manifest (recorded by tag in the
download cache) and its blobs on this machine.

Nothing here can change what a build makes: a step checks what it finds as
it checks a download, a key predicted wrong only costs its download, and a
failure is a miss (the step asks again, and says what went wrong).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from acigen.helpers.registry.layercache import LayerCache, cache_key, key_of, with_reads
from acigen.imageref import parse


def image_step_reads(step: dict[str, Any]) -> list[str]:
    """The host files the image step records as read (helpers/unpack/image.py,
    helpers/registry/image.py): its key includes them."""
    if "oci" in step:
        return [] if "ref" in step else [parse(step["oci"]).path]
    return [step["path"]] if "path" in step else []


def prefetch(spec: dict[str, Any]) -> tuple[int, int]:
    """Fetch the cached layers of the image step SPEC's chroot steps above it:
    (how many the cache repository had, how many were asked for)."""
    base = cache_key(spec)
    if base is None:
        return 0, 0
    keys = {spec["layer"]: with_reads(base, image_step_reads(spec["step"]))}
    found = asked = 0
    for step_file in spec["cache"]["prefetch"]:
        with open(step_file, encoding="utf-8") as src:
            above = json.load(src)
        parent = keys.get(above["lower"][0]) if above.get("lower") else None
        if parent is None or "cache" not in above:
            continue
        key = keys[above["layer"]] = key_of(above, parent)
        asked += 1
        found += LayerCache(above).warm(key)
    return found, asked


class Prefetch:
    """prefetch(SPEC) in a thread: it waits on the network while the step unpacks."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.result: tuple[int, int] | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(spec,), daemon=True,
                                       name="layer-prefetch")
        self.thread.start()

    def _run(self, spec: dict[str, Any]) -> None:
        try:
            self.result = prefetch(spec)
        except Exception as exc:  # a step file gone or damaged: only a lost head start
            self.failure = exc

    def finish(self) -> str:
        """Wait for it: a line for the step's log."""
        self.thread.join()
        if self.result is None:
            return f"prefetching the layers above failed: {self.failure}"
        found, asked = self.result
        return f"prefetched {found} of {asked} layers above from the layer cache"
