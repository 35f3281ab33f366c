"""--cache-repo: the image step brings in the cached layers of the steps above it.

A second machine's build would otherwise ask the cache repository for each
chroot step's layer when that step starts, one after another, after the
base is unpacked.  But a cache key names a step's inputs, not the layers
below it (helpers/registry/layercache.py), so the keys of the chroot steps
above an image step are known before any of them runs: acigen lists their
step files in a side file (`cache.prefetch` in the image step's spec names
it; it is not an input of the step, so editing a step above does not unpack
the base again), and the image step fetches their layers into the download
cache in a thread while it unpacks.  Each manifest found is recorded in the
image step's layer (LAYER/prefetched/KEY, private to root), where the step
above finds it and asks the registry nothing; its blobs are checked by
content as any download's are, and a record that fails is a step asking
the registry itself.  The records live as long as the base's layer.

Nothing here can change what a build makes: a key predicted wrong only costs
its download, and a failure is a miss (the step asks again, and says what
went wrong).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from acigen.fileio import read_json
from acigen.helpers.registry.layercache import RECORDS, LayerCache, key_of, with_reads
from acigen.helpers.unpack.image import image_step_reads
from acigen.stepspec import StepSpec, load_spec


def prefetch(spec: dict[str, Any], key: str) -> tuple[int, int]:
    """Fetch the cached layers of the chroot steps above the image step SPEC
    (cache key KEY): (how many the cache repository had, how many were asked for)."""
    step_files = read_json(spec["cache"]["prefetch"])
    keys = {spec["layer"]: with_reads(key, image_step_reads(spec["step"]))}
    records = os.path.join(spec["layer"], RECORDS)
    found = asked = 0
    for step_file in step_files:
        above = load_spec(StepSpec, step_file).to_json()  # as its own step will see it
        parent = keys.get(above["lower"][0]) if above.get("lower") else None
        if parent is None or "cache" not in above:
            continue
        above_key = keys[above["layer"]] = key_of(above, parent)
        asked += 1
        if LayerCache(above).warm(above_key, records):
            found += 1
    return found, asked


class Prefetch:
    """prefetch(SPEC, KEY) in a thread: it waits on the network while the step
    unpacks.  Its directories are made here, before the unpack sets the umask
    to 0 for the whole process."""

    def __init__(self, spec: dict[str, Any], key: str) -> None:
        from acigen.helpers.fetch.cache import Cache
        Cache(spec["cache"].get("cache_dir"))
        os.makedirs(os.path.join(spec["layer"], RECORDS), mode=0o700, exist_ok=True)
        self.result: tuple[int, int] | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(spec, key), daemon=True,
                                       name="layer-prefetch")
        self.thread.start()

    def _run(self, spec: dict[str, Any], key: str) -> None:
        try:
            self.result = prefetch(spec, key)
        except Exception as exc:  # a step file gone or damaged: only a lost head start
            self.failure = exc

    def finish(self) -> str:
        """Wait for it: a line for the step's log."""
        self.thread.join()
        if self.result is None:
            return f"prefetching the layers above failed: {self.failure}"
        found, asked = self.result
        return f"prefetched {found} of {asked} layers above from the layer cache"
