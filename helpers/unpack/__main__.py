"""acigen-unpack: the image step as ninja runs it, and unpacking by hand (see image.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from acigen.errors import ExitCode
from acigen.helpers.core.common import run_main
from acigen.helpers.fetch.pins import verify
from acigen.helpers.tar.untar import DEVICE_POLICIES
from acigen.helpers.unpack.image import PROG, image_action, max_size_of, unpack_into_new_dir
from acigen.specs import pins_of


def _by_hand(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Unpack a tar archive or an ACI into a new directory, "
        "safely (nothing lands outside it).")
    parser.add_argument("archive")
    parser.add_argument("dest")
    parser.add_argument("--devices", choices=DEVICE_POLICIES, default="error",
                        help="device nodes: error (default), keep or skip")
    parser.add_argument("--max-size", type=int, metavar="BYTES",
                        help="refuse an archive holding more, uncompressed")
    parser.add_argument("--sha256")
    parser.add_argument("--sha512")
    args = parser.parse_args(argv)
    pins = pins_of({"sha256": args.sha256, "sha512": args.sha512})
    if pins:
        verify(args.archive, pins)
    result = unpack_into_new_dir(args.archive, args.dest, args.devices,
                                 max_size_of(args.max_size))
    print(f"{PROG}: {result.summary(args.archive)} into {args.dest}")
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    import sys
    args = sys.argv[1:] if argv is None else argv
    if "--step" in args:
        from acigen.helpers.layers.step import step_main  # by hand, skip its imports
        return step_main(PROG, image_action, args)
    return run_main(PROG, _by_hand, args)


if __name__ == "__main__":
    raise SystemExit(main())
