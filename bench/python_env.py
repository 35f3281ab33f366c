"""Benchmark: create_python_env's precompiled standard library, and what it costs.

    sudo .venv/bin/python bench/python_env.py [--python EXE] [--rounds N]

1. Start-up: `python -c "import ..."` (json, asyncio, email, http.client, ssl,
   sqlite3, decimal) chrooted into a root built with precompile (the default)
   and into one built with --no-precompile and run with -B, as from a read-only
   image, where Python must compile every module it imports at every start:
   median wall time of each and the ratio.
2. Build: the helper's wall time with the default settings, and with
   --no-precompile (what compiling costs); the compile step alone with the
   worker processes in parallel and with one (the fixed 8-way split is kept, so
   the bytes are the same).
3. Size: the xz size (preset 6, as `acigen -C xz`) of the default root, of one
   with pip's modules compiled too, and of one with the test suites kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Variant, interleaved, median, use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen
from acigen.helpers.python_env.compile import Source, compile_sources
from acigen.helpers.python_env.probe import probe

IMPORTS = "import json, asyncio, email.message, http.client, ssl, sqlite3, decimal"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def helper(root: Path, python: str, *options: str) -> None:
    subprocess.run([sys.executable, "-m", "acigen.helpers.python_env", "--root", str(root),
                    "--python", python, *options], check=True, stdout=subprocess.DEVNULL)


def fresh_helper(root: Path, python: str, *options: str) -> Variant:
    """The helper into an empty ROOT, emptied (untimed) before each run."""
    def empty() -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()

    return Variant(lambda: helper(root, python, *options), empty)


def startup(root: Path, *flags: str) -> Variant:
    return Variant(lambda: subprocess.run(
        [CHROOT, str(root), "/usr/bin/python", *flags, "-c", IMPORTS], check=True,
        env={"PATH": "/usr/bin:/bin"}))


def xz_size(root: Path) -> int:
    tar = subprocess.Popen(["tar", "-C", str(root), "--sort=name", "--numeric-owner", "-c",
                            "."], stdout=subprocess.PIPE)
    xz = subprocess.run(["xz", "-6", "-T1", "-c"], stdin=tar.stdout, capture_output=True,
                        check=True)
    tar.wait()
    return len(xz.stdout)


def compile_times(python: str, root: Path, rounds: int) -> tuple[float, float]:
    stdlib = root / "usr/lib" / f"python{'.'.join(python_version(python))}"
    sources = [Source("/" + str(p.relative_to(root)), p.read_bytes(), False)
               for p in sorted(stdlib.rglob("*.py")) if "site-packages" not in p.parts]
    workers = {"serial": 1, "parallel": os.cpu_count() or 1}
    samples = interleaved({name: Variant(lambda jobs=jobs: compile_sources(python, sources,
                                                                           jobs=jobs))
                           for name, jobs in workers.items()}, rounds)
    return median(samples["serial"]).wall, median(samples["parallel"]).wall


def python_version(python: str) -> tuple[str, str]:
    facts = probe(python)
    return str(facts.version[0]), str(facts.version[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    python = probe(args.python).executable
    with tempfile.TemporaryDirectory(prefix="acigen-bench-python-") as tmp:
        roots = {name: Path(tmp) / name for name in ("default", "plain", "tests")}
        build = interleaved({
            "default": fresh_helper(roots["default"], python),
            "plain": fresh_helper(roots["plain"], python, "--no-precompile"),
        }, max(1, args.rounds // 2))
        roots["tests"].mkdir()
        helper(roots["tests"], python, "--keep-tests")
        starts = interleaved({"warm": startup(roots["default"]),
                              "cold": startup(roots["plain"], "-B")}, args.rounds * 2)
        warm, cold = median(starts["warm"]).wall, median(starts["cold"]).wall
        serial, parallel = compile_times(python, roots["default"], max(1, args.rounds // 2))
        print(f"python: {python}, {os.cpu_count()} CPUs")
        print(f"start-up, {IMPORTS!r}:")
        print(f"  precompiled       {warm * 1000:7.1f} ms")
        print(f"  compiled at start {cold * 1000:7.1f} ms  (ratio {cold / warm:.1f}x)")
        print("helper wall time:")
        print(f"  default           {median(build['default']).wall:7.2f} s")
        print(f"  --no-precompile   {median(build['plain']).wall:7.2f} s")
        print(f"compiling the standard library: 1 worker {serial:.2f} s, "
              f"{os.cpu_count()} at once {parallel:.2f} s (ratio {serial / parallel:.1f}x)")
        default_size = xz_size(roots["default"])
        print("xz -6 size of the root:")
        print(f"  default           {default_size / 1e6:7.2f} MB")
        print(f"  with tests        {xz_size(roots['tests']) / 1e6:7.2f} MB")
        subprocess.run([CHROOT, str(roots["default"]), "/usr/bin/python", "-m", "compileall",
                        "-q", "--invalidation-mode", "unchecked-hash", "/usr/lib"], check=True,
                       env={"PATH": "/usr/bin:/bin"})
        with_pip = xz_size(roots["default"])
        print(f"  with pip compiled {with_pip / 1e6:7.2f} MB  "
              f"(+{(with_pip - default_size) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
