"""Benchmark: acigen-unpack against GNU tar on the Debian minbase tarball.

    sudo .venv/bin/python bench/unpack.py [--rounds N] [--formats tar,gz,...]

Each round extracts the same archive with `tar -xpf` (owners, xattrs) and
with `python -m acigen.helpers.unpack` (whole programs, interpreter start
included) into fresh directories on the same filesystem, alternating which
goes first; prints the median wall time and CPU time (user + system, with
the decompressor's) of each, and the ratios acigen / tar (below 1.0 = acigen
is faster).  Other load on the machine adds noise to wall times; CPU times
are steadier.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Sample, median, timed, use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen
from tests.support.rootfs import cache_dir, debian_minbase_tarball

COMPRESSORS = {"tar": None, "gz": ["gzip", "-6"], "xz": ["xz", "-T1", "-3"],
               "zst": ["zstd", "-q", "-3"], "bz2": ["bzip2", "-9"]}


def archive(fmt: str) -> Path:
    """The minbase tarball in FORMAT, made once and cached."""
    plain = debian_minbase_tarball()
    if COMPRESSORS[fmt] is None:
        return plain
    out = cache_dir() / f"bench-minbase.tar.{fmt}"
    if not out.exists():
        tmp = out.with_name(out.name + ".tmp")
        with open(plain, "rb") as src, open(tmp, "wb") as dst:
            subprocess.run(COMPRESSORS[fmt], stdin=src, stdout=dst, check=True)
        tmp.rename(out)
    return out


def tar_cmd(src: Path, dest: Path) -> list[str]:
    return ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(src),
            "-C", str(dest)]


def acigen_cmd(src: Path, dest: Path) -> list[str]:
    return [sys.executable, "-m", "acigen.helpers.unpack", "--devices", "keep", str(src),
            str(dest)]


SETTLE = 3.0  # seconds for the filesystem to finish freeing the previous tree


def extraction(cmd: list[str], dest: Path, mkdir: bool, settle: float) -> Sample:
    """Wall and CPU seconds of one extraction."""
    if mkdir:
        dest.mkdir()
    # ext4 frees a deleted tree's inodes and blocks in the background; an
    # extraction started meanwhile pays for it (measured: 5 s instead of 1.4 s)
    subprocess.run(["sync"], check=True)
    time.sleep(settle)
    sample = timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))
    shutil.rmtree(dest)
    return sample


def bench(fmt: str, rounds: int, work: Path,
          settle: float) -> dict[str, tuple[float, float]]:
    """tool -> (median wall, median cpu), on the minbase tarball in FORMAT."""
    return compare(archive(fmt), rounds, work, settle)


def compare(src: Path, rounds: int, work: Path,
            settle: float) -> dict[str, tuple[float, float]]:
    """tool -> (median wall, median cpu) of unpacking SRC."""
    runs: dict[str, list[Sample]] = {"tar": [], "acigen": []}
    # in turns, as common.interleaved does, but alternating which goes first
    for i in range(rounds):
        order = ["tar", "acigen"] if i % 2 == 0 else ["acigen", "tar"]
        for tool in order:
            dest = work / f"{tool}-{i}"
            if tool == "tar":
                runs[tool].append(extraction(tar_cmd(src, dest), dest, True, settle))
            else:
                runs[tool].append(extraction(acigen_cmd(src, dest), dest, False, settle))
    return {tool: (median(rs).wall, median(rs).cpu) for tool, rs in runs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--formats", default="tar,gz")
    parser.add_argument("--dir", help="where to extract (default: a temporary dir in /tmp)")
    parser.add_argument("--settle", type=float, default=SETTLE,
                        help="seconds to wait before each run (default %(default)s)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: both tools restore owners and device nodes", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="acigen-bench-", dir=args.dir))
    try:
        print(f"medians of {args.rounds} rounds; wall = elapsed, cpu = user + system")
        print(f"{'archive':<24} {'tar wall':>9} {'acigen':>9} {'ratio':>6}   "
              f"{'tar cpu':>8} {'acigen':>8} {'ratio':>6}")
        for fmt in args.formats.split(","):
            result = bench(fmt, args.rounds, work, args.settle)
            (tar_wall, tar_cpu), (our_wall, our_cpu) = result["tar"], result["acigen"]
            name = f"minbase.tar.{fmt} " if fmt != "tar" else "minbase.tar "
            name += f"({archive(fmt).stat().st_size / 1e6:.0f} MB)"
            print(f"{name:<24} {tar_wall:>8.3f}s {our_wall:>8.3f}s {our_wall / tar_wall:>6.2f}   "
                  f"{tar_cpu:>7.3f}s {our_cpu:>7.3f}s {our_cpu / tar_cpu:>6.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
