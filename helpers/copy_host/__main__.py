"""copy_host_files: host binaries with their run-time closure, and files.

`binaries` are copied to the same paths in the image together with
everything the host's dynamic loader would load for them (found by the ELF
resolver against the host root, never by running ldd): the interpreter,
libraries, the symlinks on the way, NSS modules and libgcc_s.  `files` are
[host path, image path] pairs; a directory is copied recursively.

By hand: acigen-copy-host --root DIR [--binary PATH]... [--file SRC DST]...
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from acigen.errors import ExitCode, HelperError
from acigen.helpers import elf
from acigen.helpers.core.common import run_main
from acigen.helpers.layers.step import StepContext, step_main
from acigen.helpers.rootfs.hostcopy import Copier
from acigen.helpers.rootfs.root import Root, split

# What the loader needs.  Not NSS: the host's nsswitch.conf names modules for
# the host's services (systemd, sss...), and the image does not get that file
# (glibc without one uses files and dns, built in since 2.34).  Not gconv:
# 8 MB of charset modules a copied program rarely uses (copy them with `files`).
HOST_RULES = ("libgcc_s",)


def host_closure(binaries: Sequence[str]) -> list[str]:
    """Every host path to copy for BINARIES, parents before children.

    The host's configuration (/etc: passwd, resolv.conf, ld.so.cache, ...)
    is never copied: it describes the host, not the image.
    """
    found = elf.closure("/", list(binaries), rules=HOST_RULES)
    if found.problems:
        raise HelperError("cannot copy: " + "; ".join(found.problems))
    return sorted(path for path in set(found.files) | set(binaries)
                  if not path.startswith("/etc/"))


def copy_into(root_dir: str, binaries: Sequence[str], files: Sequence[Sequence[str]],
              say=print) -> tuple[list[str], Copier]:  # type: ignore[no-untyped-def]
    """Copy into ROOT_DIR; returns the host files read and the copier."""
    read: list[str] = []
    with Root(root_dir) as root:
        copier = Copier(root)
        for path in host_closure(binaries) if binaries else []:
            copier.copy(path, path)
            read.append(path)
        for src, dst in files:
            _check_destination(dst)
            if not os.path.lexists(src):
                raise HelperError(f"{src}: no such file on the host")
            if os.path.isdir(src):
                read += copier.copy_tree(src, dst)
            else:
                copier.copy(os.path.realpath(src), dst, os.stat(src), model_on_host=False)
            read.append(src)
    for path in copier.replaced:
        say(f"replaced {path} in the image with the host's file")
    return read, copier


def _check_destination(dst: str) -> None:
    """The compiler checks the manifest's pairs; a pair given by hand is
    checked here, with the same rule."""
    parts = split(dst)
    if ".." in parts:
        raise HelperError(f"{dst!r}: an image path may not hold '..'")
    if not parts:
        raise HelperError(f"{dst!r}: the image path names no entry in the image")


def check_in_image(root_dir: str, binaries: Sequence[str]) -> None:
    """The copied programs must load inside the image as they do on the
    host: an image library of the same name but too old is an error."""
    found = elf.closure(root_dir, list(binaries))
    if found.problems:
        raise HelperError("copied programs will not run in the image: "
                          + "; ".join(found.problems),
                          hint="copy the libraries too (a base image with an older libc "
                               "cannot run newer host programs)")


def step_action(ctx: StepContext) -> str:
    binaries = ctx.step.get("binaries", [])
    read, _copier = copy_into(ctx.root, binaries, ctx.step.get("files", []), ctx.say)
    if binaries:
        check_in_image(ctx.root, binaries)
    ctx.inputs_read += read
    return f"copied {len(read)} host files"


def by_hand(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="acigen-copy-host", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the image root to copy into")
    parser.add_argument("--binary", action="append", default=[], metavar="PATH")
    parser.add_argument("--file", action="append", nargs=2, default=[], metavar=("SRC", "DST"))
    args = parser.parse_args(argv)
    read, _ = copy_into(args.root, args.binary, args.file)
    if args.binary:
        check_in_image(args.root, args.binary)
    print(f"copied {len(read)} host files into {args.root}")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    import sys
    args = sys.argv[1:] if argv is None else argv
    if "--step" in args:
        return step_main("acigen-copy-host", step_action, args)
    return run_main("acigen-copy-host", by_hand, args)


if __name__ == "__main__":
    raise SystemExit(main())
