"""How fast and how small acigen-pack is, against GNU tar and the same compressor.

    sudo .venv/bin/python bench/pack.py [--runs 3] [--compressions gzip,xz] [--bigger]

For each compression: a full pack with an empty chunk cache against
`tar --sort=name --numeric-owner -cf - -C tree . | gzip -6` (or `| xz -T0 -6`,
`| bzip2 -9`), both as processes, wall time and size; then the incremental
case: one file in /etc changed, packed again with a warm cache, as a fraction
of a full pack.  Last, chunk compression on threads against processes.
Medians of --runs runs.  Issue 9's targets: full pack <= 1.1x the time of
tar + the same compressor, size <= 1.02x; after a one-file change <= 0.1x of
a full pack.

The tree is the Debian bookworm minbase the tests cache (built once with
debootstrap); --bigger adds two more copies of /usr under /opt (~3x the size).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from common import use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen

from common import Sample, Variant, interleaved, median

from acigen.helpers.tar.chunks import DEFAULT_AVERAGE, codec, default_jobs
from tests.support.rootfs import debian_minbase_tree

REFERENCE = {"gzip": ["gzip", "-6"], "xz": ["xz", "-T0", "-6"], "bzip2": ["bzip2", "-9"]}
MANIFEST = '{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/bench"}\n'


def gnu_tar(tree: Path, compression: str, out: Path) -> None:
    tar = f"tar --sort=name --numeric-owner -cf - -C {tree} ."
    subprocess.run(f"{tar} | {' '.join(REFERENCE[compression])} > {out}", shell=True,
                   check=True)


EXTRA: list[str] = []  # more acigen-pack options (--chunk-size)


def acigen_pack(tree: Path, compression: str, out: Path, cache: Path, work: Path) -> None:
    subprocess.run([sys.executable, "-m", "acigen.helpers.pack", "--manifest",
                    str(work / "manifest.json"), "--rootfs", str(tree), "-o", str(out),
                    "-C", compression, "--chunk-cache", str(cache), *EXTRA],
                   check=True, stdout=subprocess.DEVNULL)


def bench_compression(tree: Path, compression: str, work: Path, runs: int) -> None:
    """Runs interleaved (reference, cold, one file changed), so that a
    machine busy with other work slows all three alike."""
    ref_out, out, cache = work / f"ref.{compression}", work / "image.aci", work / "cache"
    changed = tree / "etc" / "debian_version"
    original = changed.read_bytes()
    sizes: list[int] = []  # of the cold pack's image

    def change_one_file() -> None:
        sizes.append(out.stat().st_size)
        changed.write_bytes(original + b"bench %d\n" % len(sizes))

    def pack() -> None:
        acigen_pack(tree, compression, out, cache, work)

    try:
        samples = interleaved({
            "ref": Variant(lambda: gnu_tar(tree, compression, ref_out),
                           prepare=lambda: changed.write_bytes(original)),
            "cold": Variant(pack, prepare=lambda: shutil.rmtree(cache, ignore_errors=True)),
            "warm": Variant(pack, prepare=change_one_file),
        }, runs)
    finally:
        changed.write_bytes(original)
    report(compression, median(samples["ref"]), ref_out.stat().st_size, median(samples["cold"]),
           sizes[-1], median(samples["warm"]))


def report(compression: str, ref: Sample, ref_size: int, cold: Sample, size: int,
           warm: Sample) -> None:
    name = " ".join(REFERENCE[compression])
    print(f"{compression:5}  GNU tar | {name:12}        {ref.wall:7.2f} s  (cpu {ref.cpu:6.2f} s)"
          f"  {ref_size / 1e6:7.2f} MB")
    print(f"{compression:5}  acigen-pack, cold cache     {cold.wall:7.2f} s"
          f"  (cpu {cold.cpu:6.2f} s)"
          f"  {size / 1e6:7.2f} MB   time {cold.wall / ref.wall:.2f}x  size {size / ref_size:.3f}x")
    print(f"{compression:5}  acigen-pack, 1 file changed {warm.wall:7.2f} s"
          f"  (cpu {warm.cpu:6.2f} s)"
          f"              time {warm.wall / cold.wall:.2f}x of a full pack"
          f" (cpu {warm.cpu / cold.cpu:.2f}x), {warm.wall / ref.wall:.2f}x of GNU tar | "
          f"{REFERENCE[compression][0]}")


def _compress_all(executor: Executor, compression: str, chunks: list[bytes]) -> int:
    return sum(map(len, executor.map(codec(compression).compress, chunks)))


def bench_executors(tree: Path, work: Path, runs: int, compression: str = "gzip") -> None:
    """The same chunks compressed on threads and on processes, interleaved."""
    subprocess.run(["tar", "--sort=name", "--numeric-owner", "-cf", str(work / "plain.tar"),
                    "-C", str(tree), "."], check=True)
    data = (work / "plain.tar").read_bytes()
    size = DEFAULT_AVERAGE[compression]
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    jobs = default_jobs()
    kinds: dict[str, type[Executor]] = {"threads": ThreadPoolExecutor,
                                        "processes": ProcessPoolExecutor}

    def compress_on(make: type[Executor]) -> None:
        with make(jobs) as executor:
            _compress_all(executor, compression, chunks)

    samples = interleaved({kind: Variant(lambda make=make: compress_on(make))
                           for kind, make in kinds.items()}, runs)
    for kind in kinds:
        print(f"{compression:5}  {len(chunks)} chunks of {size >> 20} MiB on {jobs} {kind:9}"
              f" {median(samples[kind]).wall:6.2f} s")


def bigger_tree(tree: Path) -> None:
    for copy in ("copy1", "copy2"):
        subprocess.run(["cp", "-a", str(tree / "usr"), str(tree / "opt" / copy)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compressions", default="gzip,xz")
    parser.add_argument("--bigger", action="store_true", help="about 3x the minbase tree")
    parser.add_argument("--chunk-size", metavar="MIB", help="passed to acigen-pack")
    parser.add_argument("--no-executors", action="store_true",
                        help="skip the threads-against-processes part")
    args = parser.parse_args()
    if args.chunk_size:
        EXTRA.extend(["--chunk-size", args.chunk_size])
    with tempfile.TemporaryDirectory(prefix="acigen-bench-") as tmp:
        work = Path(tmp)
        (work / "manifest.json").write_text(MANIFEST)
        tree = debian_minbase_tree(work / "tree")
        if args.bigger:
            bigger_tree(tree)
        entries = sum(len(dirs) + len(files) for _, dirs, files in os.walk(tree))
        print(f"tree: Debian bookworm minbase{' x3' if args.bigger else ''}, {entries} entries;"
              f" {default_jobs()} cores, load {os.getloadavg()[0]:.1f}; medians of {args.runs}"
              f" runs{'; chunk size ' + args.chunk_size + ' MiB' if args.chunk_size else ''}")
        for compression in args.compressions.split(","):
            bench_compression(tree, compression, work, args.runs)
        if not args.no_executors:
            bench_executors(tree, work, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
