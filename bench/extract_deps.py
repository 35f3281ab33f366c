"""Benchmark: the closure of every ELF file of a Debian minbase root, acigen vs lddtree.

    .venv/bin/python bench/extract_deps.py [--runs 5] [--root DIR]

Both tools run as fresh processes over the same list of files (every regular ELF file in
the root), so interpreter start-up and cold parse caches count for both; lddtree is
pax-utils' (Debian package pax-utils), run with this interpreter because it needs
pyelftools.  Prints the median wall time of each and the ratio.  Without --root, the
minbase tree from tests.support.rootfs is unpacked into a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Variant, median, repeated

LDDTREE = "/usr/bin/lddtree"


def elf_files(root: Path) -> list[str]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            host = os.path.join(directory, name)
            if os.path.islink(host) or not os.path.isfile(host):
                continue
            with open(host, "rb") as stream:
                if stream.read(4) == b"\x7fELF":
                    found.append("/" + os.path.relpath(host, root))
    return sorted(found)


def acigen_cmd(root: Path, files: list[str]) -> list[str]:
    return [sys.executable, "-m", "acigen.helpers.extract_deps", "--root", str(root), *files]


def lddtree_cmd(root: Path, files: list[str]) -> list[str]:
    """lddtree run by this interpreter, which has pyelftools."""
    return [sys.executable, LDDTREE, "-R", str(root), "-l", "--skip-non-elfs", *files]


def measure(name: str, cmd: list[str], runs: int) -> float:
    codes: set[int] = set()

    def run() -> None:
        codes.add(subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 check=False).returncode)

    samples = repeated(Variant(run), runs)
    times = [sample.wall for sample in samples]
    middle = median(samples).wall
    print(f"{name:>10}: median {middle:6.2f} s over {runs} runs "
          f"(min {min(times):.2f}, max {max(times):.2f}; exit {sorted(codes)})")
    return middle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", help="an unpacked root (default: Debian minbase from the "
                                       "test cache, unpacked to a temporary directory)")
    args = parser.parse_args()
    if not os.path.exists(LDDTREE):
        print(f"{LDDTREE} not found: install pax-utils", file=sys.stderr)
        return 1
    tmp = None
    root = Path(args.root) if args.root else None
    if root is None:
        from common import use_repo_support

        use_repo_support()  # tests.support, without shadowing the installed acigen
        from tests.support.rootfs import debian_minbase_tree

        tmp = tempfile.mkdtemp(prefix="acigen-bench-")
        root = debian_minbase_tree(Path(tmp) / "root")
    try:
        files = elf_files(root)
        print(f"root {root}: {len(files)} ELF files")
        ours = measure("acigen", acigen_cmd(root, files), args.runs)
        theirs = measure("lddtree", lddtree_cmd(root, files), args.runs)
        print(f"     ratio: lddtree / acigen = {theirs / ours:.1f}x")
    finally:
        if tmp:
            shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
