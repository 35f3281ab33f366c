"""`acigen verify`: check a build directory against what the build recorded.

Each finished layer against its record (helpers/layers/layerrecord.py: every
entry's type, mode, owner, size and mtime), each stamp against its layer,
and each compressed chunk in the chunk cache against its digest.  Prints one
line per problem and a summary; exit 1 if there was any.  Removes nothing:
a damaged layer's stamp is for the user (or the next pack) to remove.
"""

from __future__ import annotations

import argparse
import os

from acigen.errors import ExitCode
from acigen.helpers.builddir.gc import CHUNKS, as_its_builder, builddir_of, entries
from acigen.helpers.layers import layerrecord
from acigen.helpers.tar.chunks import checked_blob


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="acigen verify", description="Check the build directory's layers and cached "
        "chunks against what the build recorded; exit 1 on any difference.")
    p.add_argument("-f", "--file", default="build.ninja", metavar="FILE",
                   help="a build file acigen generated (default: build.ninja)")
    p.add_argument("-B", "--builddir", metavar="DIR",
                   help="the build directory (default: .acigen beside FILE)")
    return p.parse_args(argv)


def layer_problems(builddir: str) -> tuple[int, list[str]]:
    """(layers checked, problems) for every layer that has a stamp."""
    layers = os.path.join(builddir, "layers")
    stamped = [n.removesuffix(".stamp") for n in entries(layers) if n.endswith(".stamp")]
    problems = []
    for name in stamped:
        layer = os.path.join(layers, name)
        if not os.path.isdir(os.path.join(layer, "tree")):
            problems.append(f"layer {layer}: missing, but its stamp says it is built")
            continue
        found = layerrecord.differences(layer, os.path.join(layer, "tree"))
        if found is None:
            problems.append(f"layer {layer}: no record (made by an older acigen)")
        elif found:
            problems.append(f"layer {layer}: changed since its step made it: "
                            f"{'; '.join(found)}")
    return len(stamped), problems


def chunk_problems(builddir: str) -> tuple[int, list[str]]:
    cache = os.path.join(builddir, CHUNKS)
    names = [n for n in entries(cache) if n not in ("lock", "uses") and not n.startswith(".")]
    problems = []
    for name in names:
        with open(os.path.join(cache, name), "rb") as src:
            if checked_blob(src.read()) is None:
                problems.append(f"chunk {os.path.join(cache, name)}: damaged (the next pack "
                                "compresses it again)")
    return len(names), problems


def verify_main(argv: list[str]) -> int:
    builddir = builddir_of(parse(argv))
    as_its_builder(builddir)  # rootless: the layers' owners are read as the build wrote them
    layers, bad_layers = layer_problems(builddir)
    chunks, bad_chunks = chunk_problems(builddir)
    for line in bad_layers + bad_chunks:
        print(f"acigen verify: {line}")
    problems = len(bad_layers) + len(bad_chunks)
    print(f"acigen verify: {layers} layers and {chunks} cached chunks checked in {builddir}: "
          f"{problems or 'no'} problem{'' if problems == 1 else 's'}")
    return ExitCode.FAILED if problems else ExitCode.OK
