"""The `extract` step: prune an image to what its programs need at run time.

What ninja runs, and the command line; the work is in extraction.py."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from acigen.errors import ExitCode
from acigen.helpers.core.common import run_main
from acigen.helpers.extract.extraction import PROG, Request, extract
from acigen.helpers.layers.step import StepContext, step_main


def step_action(ctx: StepContext) -> str:
    def warn(text: str) -> None:
        ctx.say(f"warning: {text}")
        print(f"extract: warning: {text}", flush=True)  # ninja shows a job's stdout
    return extract(ctx.root, Request.from_step(ctx.step), ctx.say, warn).summary()


def by_hand(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the image root to prune, in place")
    parser.add_argument("--binary", action="append", default=[], metavar="PATH")
    parser.add_argument("--keep", action="append", default=[], metavar="PATH_OR_GLOB")
    parser.add_argument("--allow-missing", action="append", default=[], metavar="LIBRARY")
    parser.add_argument("--user", help="the app's user (a name needs /etc/passwd kept)")
    parser.add_argument("--group", help="the app's group (a name needs /etc/group kept)")
    parser.add_argument("--path", help="PATH for bare binary names")
    parser.add_argument("--dry-run", action="store_true",
                        help="list what would be kept (with -v) and change nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every kept path")
    args = parser.parse_args(argv)
    app: dict[str, Any] = {k: v for k, v in (("user", args.user), ("group", args.group)) if v}
    if args.path:
        app["environment"] = [{"name": "PATH", "value": args.path}]
    request = Request(args.binary, args.keep, args.allow_missing, app)

    def say(text: str) -> None:
        if args.verbose:
            print(text)
    outcome = extract(args.root, request, say, lambda t: print(f"{PROG}: warning: {t}"),
                      args.dry_run)
    print(("dry run: would have " if args.dry_run else "") + outcome.summary())
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--step" in args:
        return step_main(PROG, step_action, args)
    return run_main(PROG, by_hand, args)


if __name__ == "__main__":
    raise SystemExit(main())
