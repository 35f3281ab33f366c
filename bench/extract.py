"""Benchmark: the extract step on a Debian minbase root, pruning in place vs rebuilding.

    sudo .venv/bin/python bench/extract.py [--runs 5] [--binary /bin/bash]... [--tmp DIR]

acigen prunes the tree in place (keep set -> delete the complement with dir fds, put
directory times back).  The obvious alternative, what aci-packer did, rebuilds: copy the
kept paths into a new tree (here with the fastest tool for it, a tar pipe of exactly the
surviving paths) and delete the old tree (rm -rf).  Both start from a fresh copy of the
same tree and act on the same keep set; the keep set itself (closure + keeps) is timed
separately, and so are the prune as the step really runs it (through an overlay, where
each delete is a whiteout in the step's layer) and the whole step on a plain directory
(closure, keeps, prune, fixed-point check).  Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import Variant, median, repeated, timed, use_repo_support

from acigen.helpers.extract.extraction import (
    Request,
    build_keep_set,
    extract,
    find_program,
    resolve_closure,
)
from acigen.helpers.extract.keeps import KeepSet
from acigen.helpers.extract.prune import prune
from acigen.helpers.layers import layers
from acigen.helpers.rootfs.walk import Walker
from acigen.treewalk import iter_tree

use_repo_support()  # tests.support, without shadowing the installed acigen
from tests.support.rootfs import debian_minbase_tree


def quiet(_text: str) -> None:
    pass


def keep_set_of(root: str, request: Request) -> KeepSet:
    walker = Walker(root)
    programs = [find_program(walker, b, request.env()) for b in request.binaries]
    return build_keep_set(walker, resolve_closure(root, request, programs), request.keeps,
                          quiet)


def surviving(root: str, keeps: KeepSet) -> list[str]:
    """Relative paths of what the prune keeps (parents before children)."""
    return [rel for rel, _st in iter_tree(root) if keeps.covers("/" + rel)]


def rebuild(root: str, kept: list[str]) -> None:
    new = root + ".new"
    os.mkdir(new)
    listing = "\0".join(kept).encode() + b"\0"
    pack = subprocess.Popen(["tar", "-C", root, "--no-recursion", "--null", "-T", "-", "-cf",
                             "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    unpack = subprocess.Popen(["tar", "-C", new, "-xpf", "-"], stdin=pack.stdout)
    assert pack.stdin is not None and pack.stdout is not None
    pack.stdin.write(listing)
    pack.stdin.close()
    pack.stdout.close()
    if unpack.wait() or pack.wait():
        raise SystemExit("tar failed")
    shutil.rmtree(root)
    os.rename(new, root)


def median_of(runs: int, pristine: Path, work: Path, action: Callable[[str], object]) -> float:
    """The median wall time of ACTION on WORK, a fresh copy of PRISTINE each run."""
    def fresh_copy() -> None:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["cp", "-a", str(pristine), str(work)], check=True)

    return median(repeated(Variant(lambda: action(str(work)), fresh_copy), runs)).wall


def median_through_overlay(runs: int, lower: Path, keeps: KeepSet) -> float:
    """The prune as the step does it: through an overlay whose lower layer is the
    pristine tree (untouched, so no copy between runs); deletions become whiteouts.
    In a child process, whose private mount namespace takes the mounts with it."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        layers.enter_private_mount_namespace()
        samples = []
        for run in range(runs):
            layer = str(lower.parent / f"upper{run}")
            with layers.writable_view(layer, [str(lower)], "overlay") as root:
                samples.append(timed(lambda root=root: prune(root, same_keeps(keeps, root))))
        os.write(write, str(median(samples).wall).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as result:
        seconds = float(result.read())
    os.waitpid(pid, 0)
    return seconds


def same_keeps(keeps: KeepSet, root: str) -> KeepSet:
    """KEEPS (computed on the pristine tree) for an identical copy at ROOT: the set
    holds in-root paths, so only the walker's root changes."""
    return KeepSet(Walker(root), keeps.entries, keeps.trees)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--binary", action="append", default=[])
    parser.add_argument("--keep", action="append", default=[])
    parser.add_argument("--tmp", help="where to put the trees (default: $TMPDIR or /tmp)")
    args = parser.parse_args()
    request = Request(args.binary or ["/bin/bash", "/bin/ls"], args.keep)
    with tempfile.TemporaryDirectory(prefix="acigen-bench-", dir=args.tmp) as tmp:
        pristine = debian_minbase_tree(Path(tmp) / "lower" / "tree")
        work = Path(tmp) / "work"
        keeps = keep_set_of(str(pristine), request)
        kept = surviving(str(pristine), keeps)
        total = sum(1 for _ in iter_tree(str(pristine)))
        print(f"root: Debian bookworm minbase, {total} entries; keeping {len(kept)} "
              f"for {' '.join(request.binaries)}; {args.runs} runs each")
        timings = {
            "keep set (closure + keeps)": median_of(args.runs, pristine, work,
                                                    lambda r: keep_set_of(r, request)),
            "prune in place (acigen)": median_of(args.runs, pristine, work,
                                                 lambda r: prune(r, same_keeps(keeps, r))),
            "prune through an overlay": median_through_overlay(args.runs, pristine.parent,
                                                               keeps),
            "rebuild: tar kept + rm -rf": median_of(args.runs, pristine, work,
                                                    lambda r: rebuild(r, kept)),
            "whole extract step": median_of(args.runs, pristine, work,
                                            lambda r: extract(r, request, quiet, quiet)),
        }
    for name, seconds in timings.items():
        print(f"  {name:28s} {seconds * 1000:8.1f} ms")
    ratio = timings["rebuild: tar kept + rm -rf"] / timings["prune in place (acigen)"]
    print(f"prune in place is {ratio:.2f}x the speed of rebuilding")


if __name__ == "__main__":
    main()
