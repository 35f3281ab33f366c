"""What each generated file refers to in its build directory, for `acigen gc`.

Beside every file it generates, acigen records in BUILDDIR/generated/ the
paths that file's build keeps under BUILDDIR (layers, stamps, logs, side
files) and the images it writes, with a digest of the generated text.  A
record is *current* while that file exists with that text; `acigen gc`
keeps what current records name and removes the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from acigen import __version__
from acigen.errors import AcigenError
from acigen.fileio import pretty_json
from acigen.plan import Graph
from acigen.sha256 import sha256

RECORDS = "generated"
NOT_PLAIN = frozenset(("", ".", ".."))  # path components relpath would resolve


@dataclass(frozen=True)
class Record:
    path: str                 # the record file
    file: str                 # the generated file, absolute
    sha256: str
    keep: frozenset[str]      # relative to the build dir
    images: tuple[str, ...]   # absolute


def own_name(builddir: str, build_file: str) -> str:
    """HASH-NAME: what BUILD_FILE's own files in BUILDDIR are named after.
    HASH names its path relative to BUILDDIR (both absolute): moving the whole
    tree keeps the name, and build files in different directories sharing the
    build directory (both `build.ninja`) never share a record or a stamp."""
    where = sha256(os.fsencode(os.path.relpath(build_file, builddir))).hexdigest()
    return f"{where[:12]}-{os.path.basename(build_file)}"


def record_path(builddir: str, build_file: str) -> str:
    """BUILDDIR/generated/HASH-NAME.json (see own_name)."""
    return os.path.join(builddir, RECORDS, own_name(builddir, build_file) + ".json")


def record_bytes(graph: Graph, builddir: str, build_file: str, text: str,
                 extra: list[str]) -> bytes:
    """The record of BUILD_FILE; paths relative to the base dir except TEXT."""
    inside = relative_to(builddir)
    document = {
        "acigen": __version__,
        "file": inside(build_file),
        "sha256": sha256(text.encode()).hexdigest(),
        "keep": sorted(inside(p) for p in [*graph.build_paths, *extra]),
        # every output whose pack records its chunks (ACI, OCI, docker archive)
        "images": [inside(path) for image in graph.images for path in image.products
                   if not path.endswith(".asc")],
    }
    return pretty_json(document)


def relative_to(base: str) -> Callable[[str], str]:
    """os.path.relpath(PATH, BASE) as a function of PATH, without its two
    abspath calls for the usual PATH: BASE/a/b with plain components (a 50-step
    build has some 300 paths, and acigen runs at every manifest edit)."""
    prefix = base.rstrip("/") + "/"

    def relative(path: str) -> str:
        if path.startswith(prefix):
            rest = path[len(prefix):]
            if NOT_PLAIN.isdisjoint(rest.split("/")):
                return rest
        return os.path.relpath(path, base)
    return relative


def load(path: str, builddir: str) -> Record:
    try:
        with open(path, encoding="utf-8") as src:
            doc = json.load(src)
        def absolute(rel: str) -> str:
            return os.path.normpath(os.path.join(builddir, rel))
        return Record(path, absolute(doc["file"]), doc["sha256"], frozenset(doc["keep"]),
                      tuple(absolute(p) for p in doc["images"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AcigenError(f"{path}: not a record acigen wrote ({exc})",
                          "remove it, then run acigen again for each build file") from None


def is_current(record: Record) -> bool | None:
    """True: the file has the recorded text; False: it changed; None: it is gone."""
    try:
        with open(record.file, "rb") as src:
            return sha256(src.read()).hexdigest() == record.sha256
    except FileNotFoundError:
        return None


def all_records(builddir: str) -> list[Record]:
    directory = os.path.join(builddir, RECORDS)
    if not os.path.isdir(directory):
        return []
    return [load(os.path.join(directory, name), builddir)
            for name in sorted(os.listdir(directory)) if name.endswith(".json")]
