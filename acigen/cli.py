"""The command line: the one place that turns errors into exit codes.

Exit codes: 0 success, 1 bad input, 2 usage, 3 internal error (traceback
with --debug), 130 interrupted.  Bad input writes nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import traceback
from collections.abc import Sequence

from acigen import __version__, manifest, outputs
from acigen.errors import AcigenError, UsageError
from acigen.plan import Options, plan
from acigen.render import Setup, render_ninja

COMPRESSIONS = ("none", "gzip", "bzip2", "xz")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="acigen",
        description="Compile image manifests into a build.ninja; `sudo ninja` builds the "
                    "App Container Images.")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the image (only with one manifest); default: NAME.aci beside the "
                        "ninja file, NAME being the manifest file's name without .json")
    p.add_argument("-C", "--compression", choices=COMPRESSIONS, default="gzip",
                   help="default: gzip")
    p.add_argument("-f", "--ninja-file", metavar="FILE", default="build.ninja",
                   help="default: build.ninja in the current directory")
    p.add_argument("-B", "--builddir", metavar="DIR",
                   help="default: .acigen beside the ninja file")
    p.add_argument("-b", "--build", action="store_true",
                   help="run ninja right after generating")
    p.add_argument("--layer-mode", choices=("auto", "overlay", "copy"), default="auto",
                   help="how steps stack their changes: overlayfs, or full copies where "
                        "overlayfs cannot be used (auto: chosen at build time)")
    p.add_argument("--jobs-fetch", type=int, default=4, metavar="N",
                   help="downloads at once (default: 4)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="download cache (default: $XDG_CACHE_HOME/acigen or ~/.cache/acigen "
                        "of the user running the build)")
    p.add_argument("--offline", action="store_true",
                   help="build only from the download cache")
    p.add_argument("--debug", action="store_true", help="tracebacks on internal errors")
    p.add_argument("--version", action="version", version=f"acigen {__version__}")
    return p


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds")
    return int(value)


class Invocation:
    """Paths of one run, all relative to the ninja file's directory."""

    def __init__(self, args: argparse.Namespace) -> None:
        if args.output and len(args.manifests) > 1:
            raise UsageError("-o/--output needs exactly one manifest",
                             "each image is then named after its manifest file")
        if args.jobs_fetch < 1:
            raise UsageError("--jobs-fetch must be at least 1")
        self.args = args
        self.ninja_file = os.path.abspath(args.ninja_file)
        self.ninja_dir = os.path.dirname(self.ninja_file)
        self.builddir = os.path.abspath(args.builddir) if args.builddir else \
            os.path.join(self.ninja_dir, ".acigen")

    def rel(self, path: str) -> str:
        return os.path.relpath(os.path.abspath(path), self.ninja_dir)

    def output_for(self, manifest_path: str) -> str:
        if self.args.output:
            return self.rel(self.args.output)
        return manifest.output_name(manifest_path) + ".aci"

    def options(self, manifests: list[str]) -> Options:
        return Options(
            builddir=self.rel(self.builddir),
            outputs=tuple(self.output_for(m) for m in manifests),
            compression=self.args.compression, layer_mode=self.args.layer_mode,
            source_date_epoch=source_date_epoch(), fetch_jobs=self.args.jobs_fetch,
            cache_dir=os.path.abspath(self.args.cache_dir) if self.args.cache_dir else None,
            offline=self.args.offline)

    def regen_args(self) -> list[str]:
        """acigen's arguments as ninja must repeat them (from the ninja dir)."""
        a = self.args
        out = ["-f", os.path.basename(self.ninja_file), "-B", self.rel(self.builddir),
               "-C", a.compression]
        if a.output:
            out += ["-o", self.rel(a.output)]
        if a.layer_mode != "auto":
            out += ["--layer-mode", a.layer_mode]
        if a.jobs_fetch != 4:
            out += ["--jobs-fetch", str(a.jobs_fetch)]
        if a.cache_dir:
            out += ["--cache-dir", os.path.abspath(a.cache_dir)]
        if a.offline:
            out += ["--offline"]
        return out + [self.rel(m) for m in a.manifests]


def generate(inv: Invocation) -> None:
    paths = inv.args.manifests
    loaded = [manifest.load(p, inv.ninja_dir) for p in paths]
    rel_paths = [inv.rel(p) for p in paths]
    options = inv.options(paths)
    graph = plan(loaded, rel_paths, options)
    stamp = os.path.join(options.builddir, "build.ninja.stamp")
    python = os.environ.get("ACIGEN_PYTHON") or sys.executable
    setup = Setup(python=python, regen_args=inv.regen_args(),
                  ninja_file=os.path.basename(inv.ninja_file), builddir=options.builddir,
                  stamp=stamp, fetch_jobs=options.fetch_jobs)
    text = render_ninja(graph, setup)
    outputs.write_all(inv.ninja_dir, inv.ninja_file, text, graph.files, stamp)


def run_ninja(inv: Invocation) -> int:
    import ninja as ninja_pkg

    if os.geteuid() != 0:
        raise UsageError("building needs root (it mounts the layers of the image)",
                         "run `sudo acigen -b ...`, or `acigen ...` then `sudo ninja`")
    binary = os.path.join(ninja_pkg.BIN_DIR, "ninja")
    cmd = [binary, "-f", os.path.basename(inv.ninja_file)]
    return subprocess.run(cmd, cwd=inv.ninja_dir).returncode


def run(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    inv = Invocation(args)
    generate(inv)
    if args.build:
        return run_ninja(inv)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        return run(argv)
    except AcigenError as exc:
        print(f"acigen: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("acigen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"acigen: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: run again with --debug for a traceback, and report it", file=sys.stderr)
        return 3
