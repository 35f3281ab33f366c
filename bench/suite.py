"""bench/run: measure acigen against the alternatives, side by side, in one table.

The rows (issue 10): no-op ninja, incremental rebuild, regeneration, pack, unpack,
extract-deps, parallel fetch, image sizes; and (issue 13) a chroot step against
a bare `runc run`.  Prints the table and writes it, with the
machine and the date, to bench/RESULTS.md (which git keeps the history of).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import machine
import peer
import prose
import rows_build
import rows_registry
import rows_rootless
import rows_step
import rows_tools
from common import REPO
from context import FULL, QUICK, Context, Skip
from report import Report, Row

RESULTS = REPO / "bench" / "RESULTS.md"

# (issue row, what it measures, the function that measures it)
ROWS: list[tuple[int, str, Callable[[Context], list[Row]]]] = [
    (1, "no-op `ninja` on an up-to-date 10-step build", rows_build.noop),
    (2, "incremental rebuild of the nginx example", rows_build.incremental),
    (3, "`acigen` regeneration", rows_build.regeneration),
    (4, "pack", rows_tools.packing),
    (5, "unpack", rows_tools.unpacking),
    (6, "extract-deps", rows_tools.dependencies),
    (7, "parallel fetch", rows_tools.fetching),
    (8, "image sizes", rows_build.sizes),
    (9, "a chroot step's cost over its container", rows_step.step_overhead),
    (10, "peers: the nginx example by buildah", peer.peer_rows),
    (11, "a second machine's build with the shared layer cache", rows_registry.layer_cache),
    (12, "rootless builds against root's", rows_rootless.rootless_rows),
]

def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer runs, the most expensive variants skipped (< 5 min)")
    parser.add_argument("--rows", metavar="N,N", help="only these rows (e.g. 1,3)")
    parser.add_argument("--no-install", action="store_true",
                        help="do not apt-get install missing tools; skip their rows")
    parser.add_argument("--results", metavar="FILE", default=str(RESULTS),
                        help="where to write the results (default: %(default)s); - for none")
    parser.add_argument("--tmp", metavar="DIR", help="where to build (default: $TMPDIR or /tmp)")
    return parser.parse_args(argv)


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def selected(spec: str | None) -> set[int]:
    if not spec:
        return {number for number, _, _ in ROWS}
    return {int(n) for n in spec.split(",")}


def measure(ctx: Context, numbers: set[int]) -> tuple[list[Row], bool]:
    """All the rows asked for, and whether one of them failed (a skip is no failure)."""
    rows, failed = [], False
    for number, what, function in ROWS:
        if number not in numbers:
            continue
        try:
            rows += function(ctx)
        except Skip as skip:
            rows.append(Row(number, what, "", skipped=str(skip)))
        except Exception as error:
            failed = True
            traceback.print_exc()
            rows.append(Row(number, what, "", skipped="failed: " + str(error).splitlines()[0]))
    return rows, failed


def free_disk(path: Path) -> str:
    return f"{shutil.disk_usage(path).free / 1e9:.1f} GB free in {path}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if os.geteuid() != 0:
        print("bench/run: run as root (sudo bench/run): builds mount and chroot",
              file=sys.stderr)
        return 2
    plan = QUICK if args.quick else FULL
    # a plain exit on SIGTERM, so that the temporary build directories are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    missing = machine.missing_tools(not args.no_install, say)
    for reason in missing.values():
        say(f"{reason}: the rows that need it are skipped")
    started, load_before = time.monotonic(), os.getloadavg()[0]
    tmp_parent = Path(args.tmp or tempfile.gettempdir())
    say(f"disk before: {free_disk(tmp_parent)}")
    with tempfile.TemporaryDirectory(prefix="acigen-bench-", dir=tmp_parent) as tmp:
        os.chdir(tmp)  # `python -m` puts the working directory first on the module path
        ctx = Context(Path(tmp), plan, missing, say)
        rows, failed = measure(ctx, selected(args.rows))
        os.chdir("/")
    say(f"disk after: {free_disk(tmp_parent)}")
    took = time.monotonic() - started
    report = Report(facts(plan.name, took, load_before), rows)
    print("\n".join(report.lines()))
    if args.results != "-":
        write_results(Path(args.results), report)
    return 1 if failed else 0


def facts(mode: str, seconds: float, load_before: float) -> list[str]:
    return [f"- run: `bench/run{' --quick' if mode == 'quick' else ''}`, {machine.now()}, "
            f"took {seconds / 60:.1f} min; load average {load_before:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after (other work on the machine adds noise)",
            f"- machine: {machine.describe()}",
            f"- acigen: {machine.acigen_revision(REPO)}; Python {sys.version.split()[0]}"]


def write_results(path: Path, report: Report) -> None:
    text = "\n".join(["# acigen benchmarks", "", prose.HOW_TO_RUN, "",
                      "## What the rows compare", "", prose.ROW_GUIDE, "", "## Latest run", "",
                      *report.lines()]) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)
    say(f"wrote {path}")
