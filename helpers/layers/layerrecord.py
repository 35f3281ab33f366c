"""LAYER/files.json: what a finished layer holds, checked before it is used.

When a step finishes, every entry of its layer's tree is recorded: type,
mode, owner, and for a regular file its size and mtime, for a symlink its
target, for a device its number.  Before an image is packed each of its
layers is compared with its record, and `acigen verify` compares them all:
a file cut short, changed, added or removed since the step made it (a full
disk, a crash, a hand edit) stops the pack, instead of reaching the image.
A layer made before records existed has none, and is not checked.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Sequence

from acigen.errors import HelperError
from acigen.fileio import atomic_write, json_bytes, remove_file

NAME = "files.json"
VERSION = 1


def record_path(layer: str) -> str:
    return os.path.join(layer, NAME)


def _walk(top: str) -> Iterator[tuple[str, os.stat_result]]:
    """(path relative to TOP, lstat) of everything under TOP; no recursion,
    so a deep tree cannot exhaust the stack."""
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(top, rel)) as entries:
            for entry in entries:
                path = os.path.join(rel, entry.name)
                st = entry.stat(follow_symlinks=False)
                yield path, st
                if stat.S_ISDIR(st.st_mode):
                    pending.append(path)


def _describe(top: str, path: str, st: os.stat_result) -> list[object]:
    what: list[object] = [st.st_mode, st.st_uid, st.st_gid]
    if stat.S_ISREG(st.st_mode):
        what += [st.st_size, st.st_mtime_ns]
    elif stat.S_ISLNK(st.st_mode):
        what.append(os.readlink(os.path.join(top, path)))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        what.append(st.st_rdev)
    return what


def listing(tree: str) -> dict[str, list[object]]:
    return {os.fsdecode(path): _describe(tree, path, st) for path, st in _walk(tree)}


def write(layer: str, tree: str) -> int:
    """Record TREE as LAYER's content; how many entries."""
    entries = listing(tree)
    data = {"acigen-layer-record": VERSION, "entries": entries}
    atomic_write(record_path(layer), json_bytes(data))
    return len(entries)


def differences(layer: str, tree: str, limit: int = 3) -> list[str] | None:
    """How TREE differs from LAYER's record (at most LIMIT, by path), [] when
    it does not; None when the layer has no record."""
    try:
        with open(record_path(layer), encoding="utf-8") as src:
            recorded = json.load(src)["entries"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    now = listing(tree)
    changed = sorted(p for p in recorded.keys() | now.keys() if recorded.get(p) != now.get(p))
    return [f"{path} {_how(recorded.get(path), now.get(path))}" for path in changed[:limit]]


def _how(before: list[object] | None, after: list[object] | None) -> str:
    if before is None:
        return "was added"
    if after is None:
        return "was removed"
    if len(before) == len(after) == 5 and before[3] != after[3]:
        return f"has {after[3]} bytes, not {before[3]}"
    return "was changed"


def check(layer_dirs: Sequence[str]) -> None:
    """Stop unless every layer in LAYER_DIRS is as its step left it.  A
    changed one loses its stamp, so the next build redoes it."""
    for layer in layer_dirs:
        if not os.path.isdir(os.path.join(layer, "tree")):
            continue  # missing: the view of the layers says so
        found = differences(layer, os.path.join(layer, "tree"))
        if found:
            remove_file(layer + ".stamp")
            raise HelperError(f"layer {layer} changed since its step made it: "
                              f"{'; '.join(found)}",
                              hint="its stamp is removed: build again to redo it")
