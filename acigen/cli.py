"""The command line: the one place that turns errors into exit codes.

`acigen MANIFEST...` generates a build file; `acigen SUBCOMMAND ...` runs
one of SUBCOMMANDS.  Exit codes: 0 success, 1 bad input, 2 usage, 3
internal error (traceback with --debug), 130 interrupted.  Bad input
writes nothing.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from acigen import __version__, manifest, outputs, records, registry_options
from acigen.errors import AcigenError, ExitCode, UsageError, handle_exit
from acigen.helpers.core import ownerrecord
from acigen.invocation import Invocation
from acigen.plan import Graph, plan
from acigen.render import Setup, render_ninja
from acigen.rules import CHROOT
from acigen.specs import COMPRESSIONS, LAYER_MODES, OCI_COMPRESSIONS

# name -> "module:function"; the function takes the remaining arguments and
# returns an exit code (imported only when used, so startup stays quick)
SUBCOMMANDS = {
    "gc": "acigen.helpers.builddir.gc:gc_main",
    "clean": "acigen.helpers.builddir.gc:clean_main",
    "run": "acigen.helpers.run.__main__:main",
    "verify": "acigen.helpers.builddir.verify:verify_main",
}
EPILOG = """\
other commands:
  acigen run IMAGE.aci [--net host] [--volume NAME:PATH] [-- ARGS]
                                        run an image's app with runc or crun
  acigen gc [-f FILE] [-B DIR] [-n]     remove what no current build file uses
  acigen clean [-f FILE] [-B DIR] [-n]  remove everything the build made
  acigen verify [-f FILE] [-B DIR]      check the layers and cached chunks against
                                        what the build recorded
(a manifest named like a command is given as ./NAME)"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's, but finding the terminal's width as shutil.get_terminal_size
    does, without importing shutil: argparse makes a formatter for every
    add_argument, so at every regeneration (issue 19)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_columns() - 2 if width is None else width)


def terminal_columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="acigen", epilog=EPILOG, formatter_class=HelpFormatter,
        description="Compile image manifests into a build.ninja; `sudo ninja` builds the "
                    "App Container Images.")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the image (only with one manifest); default: NAME.aci beside the "
                        "build file, NAME being the manifest file's name without .json")
    p.add_argument("-C", "--compression", choices=COMPRESSIONS, default="gzip",
                   help="default: gzip")
    p.add_argument("-f", "--file", "--ninja-file", dest="file", metavar="FILE",
                   help="the file to write (default: build.ninja, or Makefile with "
                        "--format make)")
    p.add_argument("--format", choices=("ninja", "make"), default="ninja",
                   help="ninja (default) or a GNU make 4.3+ Makefile")
    p.add_argument("--dot", action="store_true",
                   help="print the build graph as Graphviz dot, and write nothing")
    p.add_argument("--embed", metavar="PREFIX",
                   help="write a file for `subninja`/`include` from a parent build; PREFIX "
                        "is the path from the parent's directory to this file's directory")
    p.add_argument("--explain", action="store_true",
                   help="after generating, say which steps the next build reruns and why")
    p.add_argument("-B", "--builddir", metavar="DIR",
                   help="default: .acigen beside the build file")
    p.add_argument("-b", "--build", action="store_true",
                   help="run ninja (or make) right after generating")
    p.add_argument("--chunk-size", type=int, metavar="MIB",
                   help="average size of the separately compressed pieces of an image "
                         "(default: 1 for gzip, 4 for bzip2, 16 for xz, 4 outside usr/); "
                         "smaller: a rebuild after a small change repacks faster, the image "
                         "is a little larger")
    p.add_argument("--layer-mode", choices=LAYER_MODES, default="auto",
                   help="how steps stack their changes: overlayfs, fuse-overlayfs (rootless, "
                        "where the kernel will not mount overlayfs), or full copies where "
                        "neither can be used (auto: chosen at build time)")
    p.add_argument("--runtime", metavar="NAME|PATH",
                   help="the OCI runtime that runs cmd and ansible steps: runc or crun "
                        "(default: $ACIGEN_RUNTIME when the build runs, else runc, else crun)")
    p.add_argument("--jobs-fetch", type=int, default=4, metavar="N",
                   help="downloads at once (default: 4)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="download cache (default: $XDG_CACHE_HOME/acigen or ~/.cache/acigen "
                        "of the user running the build)")
    p.add_argument("--offline", action="store_true",
                   help="build only from the download cache")
    oci = p.add_argument_group("other outputs")
    oci.add_argument("--oci", metavar="FILE",
                     help="also write an OCI image archive (oci-archive: for skopeo and "
                          "podman); with several manifests FILE must contain {name}, "
                          "e.g. {name}.oci.tar")
    oci.add_argument("--docker-archive", metavar="FILE",
                     help="with --oci, also the image for `docker load` (FILE as for --oci)")
    oci.add_argument("--squash", action="store_true",
                     help="one OCI layer instead of one per build step")
    oci.add_argument("--oci-compression", choices=OCI_COMPRESSIONS,
                     help="of the OCI layers (default: none with -C none, else gzip)")
    oci.add_argument("--sign", metavar="KEYID",
                     help="write IMAGE.asc, a detached GnuPG signature of each image")
    oci.add_argument("--gnupg-home", metavar="DIR",
                     help="the keyring for --sign (default: GNUPGHOME, or ~/.gnupg of the "
                          "user running acigen)")
    registry_options.add_arguments(p)
    p.add_argument("--debug", action="store_true", help="tracebacks on internal errors")
    p.add_argument("--version", action="version", version=f"acigen {__version__}")
    return p


def refuse_images(paths: list[str]) -> None:
    """aci-packer took `MANIFEST OUT.aci`; acigen takes manifests only.  Say
    how to write the old command, rather than fail reading an image as JSON."""
    images = [p for p in paths if p.endswith(".aci")]
    if images:
        manifests = " ".join(p for p in paths if p not in images) or "MANIFEST"
        raise UsageError(f"{images[0]}: an image is not a manifest; to build it, as "
                         f"aci-packer's `MANIFEST OUT.aci` did: "
                         f"acigen -b -o {images[0]} {manifests}")


def compile_graph(inv: Invocation) -> tuple[Graph, Setup]:
    paths = inv.args.manifests
    refuse_images(paths)
    loaded = [manifest.load(p, inv.base_dir, check_files=inv.embed is None) for p in paths]
    sign = None
    if inv.args.sign:
        from acigen import signing
        sign = signing.check_signing(inv.args.sign, inv.args.gnupg_home).to_json()
    if inv.args.oci is not None:
        from acigen import oci_config
        for loaded_manifest in loaded:
            for warning in oci_config.check_oci(loaded_manifest.image):
                print(f"acigen: warning: {loaded_manifest.path}: {warning}", file=sys.stderr)
    if any(step.kind.rule is CHROOT for m in loaded for step in m.steps):
        require_runtime(inv.args.runtime)
    options = inv.options(sign)
    graph = plan(loaded, [inv.rel(p) for p in paths], options)
    return graph, inv.setup(options)


def require_runtime(requested: str | None) -> None:
    """cmd and ansible steps run in an OCI runtime's containers: say now,
    not in the middle of the build, when there is none."""
    from acigen.errors import HelperError
    from acigen.helpers.chroot_run.seccomp import profile_path
    from acigen.helpers.core.runtimes import find_runtime
    try:
        find_runtime(requested)
        profile_path()
    except HelperError as exc:
        raise AcigenError(f"{exc}; cmd and ansible steps run in its containers",
                          exc.hint) from None


def require_same_builder(builddir: str, building: bool) -> None:
    """A build directory holds root's builds or one user's rootless ones,
    never both (BUILDDIR/owner, written by the helpers): refuse the other.
    A user may still generate for root's builds (`acigen m.json && sudo ninja`)."""
    try:
        owner = ownerrecord.read(builddir)
    except OSError:  # unreadable: the helpers, which can, will judge
        return
    mine = "root" if os.geteuid() == 0 else f"user {os.getuid()}"
    if owner is not None and owner != mine and (building or owner != "root"):
        raise AcigenError(f"{builddir}: this build directory belongs to "
                          f"{ownerrecord.describe(owner)}: use another build directory (-B), "
                          "or build as its owner")


def write(inv: Invocation, graph: Graph, setup: Setup) -> None:
    """Side files first, then the build file, its record, the stamp last."""
    require_same_builder(inv.builddir, bool(inv.args.build))
    if inv.format == "make":
        from acigen.render_make import render_make  # jinja2: only for this format
        text = render_make(graph, setup)
    else:
        text = render_ninja(graph, setup)
    outputs.write_side_files(inv.base_dir, graph.files)
    outputs.write_build_file(inv.build_file, text, touch=inv.format == "make")
    if setup.make_deps:
        outputs.write_make_deps(inv.here(setup.make_deps), setup.build_file)
    record = records.record_bytes(graph, setup.builddir, setup.build_file, text,
                                  setup.own_files)
    outputs.write_if_changed(records.record_path(inv.builddir, inv.build_file), record)
    if setup.stamp:
        outputs.write_regen_stamp(inv.here(setup.stamp), setup.stamp)


def build(inv: Invocation) -> int:
    # as root, or rootless: each helper enters a user namespace of its own
    # (helpers/core/userns.py) and says itself what this user cannot build
    import shutil  # only to build: not at every regeneration
    import subprocess
    name = os.path.basename(inv.build_file)
    if inv.format == "make":
        make = shutil.which("make")
        if make is None:
            raise AcigenError("-b --format make needs GNU make, which is not installed")
        return subprocess.run([make, "-f", name], cwd=inv.file_dir).returncode
    from acigen.explain import ninja_binary
    return subprocess.run([ninja_binary(), "-f", name], cwd=inv.file_dir).returncode


def generate(argv: Sequence[str]) -> int:
    inv = Invocation(parser().parse_args(argv))
    graph, setup = compile_graph(inv)
    if inv.format == "dot":
        from acigen.render_dot import render_dot  # jinja2: only for this format
        sys.stdout.write(render_dot(graph))
        return ExitCode.OK
    write(inv, graph, setup)
    if inv.args.explain:
        from acigen.explain import explain
        return explain(graph, inv.build_file)
    return build(inv) if inv.args.build else 0


def subcommand(name: str) -> Callable[[list[str]], int]:
    module, function = SUBCOMMANDS[name].split(":")
    command: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
    return command


def run(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        gc.enable()  # off for a regeneration's sake (__main__.py); these may run long
        return subcommand(args[0])(args[1:])
    return generate(args)


def main(argv: Sequence[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        return run(argv)
    except BaseException as exc:  # one line and its exit code (errors.ExitCode)
        return handle_exit("acigen", exc, "run again with --debug for a traceback", debug)
