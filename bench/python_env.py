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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import use_repo_support

use_repo_support()  # tests.support, without shadowing the installed acigen
from acigen.helpers.python_env.compile import Source, compile_sources
from acigen.helpers.python_env.probe import probe

IMPORTS = "import json, asyncio, email.message, http.client, ssl, sqlite3, decimal"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def helper(root: Path, python: str, *options: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "acigen.helpers.python_env", "--root", str(root),
                    "--python", python, *options], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def startup(root: Path, *flags: str) -> float:
    start = time.perf_counter()
    subprocess.run([CHROOT, str(root), "/usr/bin/python", *flags, "-c", IMPORTS], check=True,
                   env={"PATH": "/usr/bin:/bin"})
    return time.perf_counter() - start


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
    times: dict[int, list[float]] = {1: [], os.cpu_count() or 1: []}
    for _ in range(rounds):
        for jobs in times:
            start = time.perf_counter()
            compile_sources(python, sources, jobs=jobs)
            times[jobs].append(time.perf_counter() - start)
    return statistics.median(times[1]), statistics.median(times[max(times)])


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
        build = {"default": [], "plain": []}
        for _ in range(max(1, args.rounds // 2)):
            for name, options in (("default", ()), ("plain", ("--no-precompile",))):
                shutil.rmtree(roots[name], ignore_errors=True)
                roots[name].mkdir()
                build[name].append(helper(roots[name], python, *options))
        roots["tests"].mkdir()
        helper(roots["tests"], python, "--keep-tests")
        warm, cold = [], []
        for _ in range(args.rounds * 2):
            warm.append(startup(roots["default"]))
            cold.append(startup(roots["plain"], "-B"))
        serial, parallel = compile_times(python, roots["default"], max(1, args.rounds // 2))
        print(f"python: {python}, {os.cpu_count()} CPUs")
        print(f"start-up, {IMPORTS!r}:")
        print(f"  precompiled       {statistics.median(warm) * 1000:7.1f} ms")
        print(f"  compiled at start {statistics.median(cold) * 1000:7.1f} ms  "
              f"(ratio {statistics.median(cold) / statistics.median(warm):.1f}x)")
        print("helper wall time:")
        print(f"  default           {statistics.median(build['default']):7.2f} s")
        print(f"  --no-precompile   {statistics.median(build['plain']):7.2f} s")
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
