"""Benchmark: acigen-unpack against GNU tar on the Debian minbase tarball.

    sudo .venv/bin/python bench/unpack.py [--rounds N] [--formats tar,gz,...]

Each round extracts the same archive with `tar -xpf` (owners, xattrs) and
with `python -m acigen.helpers.unpack` (whole programs, interpreter start
included) into fresh directories on the same filesystem, alternating which
goes first; prints the median wall time of each and the ratio
acigen / tar (below 1.0 = acigen is faster).  The machine's other load adds
noise: compare medians, and rerun when they look odd.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
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


def timed(cmd: list[str], dest: Path, mkdir: bool) -> float:
    if mkdir:
        dest.mkdir()
    subprocess.run(["sync"], check=True)  # start each run with nothing left to write back
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed


def bench(fmt: str, rounds: int, work: Path) -> tuple[float, float]:
    src = archive(fmt)
    times: dict[str, list[float]] = {"tar": [], "acigen": []}
    for i in range(rounds):
        order = ["tar", "acigen"] if i % 2 == 0 else ["acigen", "tar"]
        for tool in order:
            dest = work / f"{tool}-{i}"
            if tool == "tar":
                times[tool].append(timed(tar_cmd(src, dest), dest, mkdir=True))
            else:
                times[tool].append(timed(acigen_cmd(src, dest), dest, mkdir=False))
    return statistics.median(times["tar"]), statistics.median(times["acigen"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--formats", default="tar,gz")
    parser.add_argument("--dir", help="where to extract (default: a temporary dir in /tmp)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: both tools restore owners and device nodes", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="acigen-bench-", dir=args.dir))
    try:
        print(f"{'archive':<28} {'tar -xpf':>10} {'acigen':>10} {'ratio':>7}  (median of "
              f"{args.rounds})")
        for fmt in args.formats.split(","):
            tar_s, ours_s = bench(fmt, args.rounds, work)
            name = f"minbase.{fmt}" if fmt != "tar" else "minbase.tar"
            size = archive(fmt).stat().st_size / 1e6
            print(f"{name + f' ({size:.0f} MB)':<28} {tar_s:>9.3f}s {ours_s:>9.3f}s "
                  f"{ours_s / tar_s:>7.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
