"""acigen-extract-deps: print what programs inside a root need at run time.

    acigen-extract-deps --root ROOT [options] PATH...

PATHs are absolute paths inside ROOT (ELF executables, shared objects or scripts).  Prints
the closure, one absolute in-root path per line, sorted, every symlink traversed included;
--json prints who needs what instead.  Nothing from ROOT is executed.  Exit status 1, with
one line per problem, when something cannot be resolved (unless --allow-unresolved).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from acigen.errors import ExitCode, HelperError, printable
from acigen.helpers.core.common import run_main
from acigen.helpers.elf import CACHE_MODES, DEFAULT_RULES, RULES, closure

PROG = "acigen-extract-deps"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the root filesystem directory")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="programs, as absolute paths inside ROOT")
    parser.add_argument("--json", action="store_true", help="print who needs what as JSON")
    parser.add_argument("--allow-unresolved", action="append", default=[], metavar="NAME",
                        help="a library name that may stay unresolved (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="the target's environment: PATH, LD_LIBRARY_PATH, LD_PRELOAD "
                             "(repeatable; the host's environment is never used)")
    parser.add_argument("--workdir", default="/",
                        help="the program's working directory, for relative search paths")
    parser.add_argument("--cpu", default="any",
                        help='"any" keeps every CPU-specific variant (default), or a '
                             "glibc-hwcaps level such as x86-64-v3")
    parser.add_argument("--cache-mode", choices=CACHE_MODES, default="cache",
                        help="cache: the root's ld.so.cache, as at run time (default); "
                             "conf: ld.so.conf directories, as after ldconfig; both")
    parser.add_argument("--rules", default=",".join(DEFAULT_RULES),
                        help=f"run-time rules, comma-separated, from {', '.join(RULES)} "
                             f"(default: %(default)s; empty for none)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print warnings too")
    return parser


def _env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise HelperError(f"--env {pair!r}: expected NAME=VALUE")
        env[name] = value
    return env


def _body(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not os.path.isdir(args.root):
        raise HelperError(f"--root {args.root}: not a directory")
    rules = [r for r in args.rules.split(",") if r]
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise HelperError(f"--rules: unknown rule {unknown[0]!r}",
                          hint=f"rules are {', '.join(RULES)}")
    result = closure(args.root, args.paths, env=_env(args.env), workdir=args.workdir,
                     cpu=args.cpu, cache_mode=args.cache_mode,
                     allow_unresolved=args.allow_unresolved, rules=rules)
    if args.verbose:
        for warning in result.warnings:
            print(f"{PROG}: warning: {printable(warning)}", file=sys.stderr)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not result.problems:  # a name's own bytes, even when not UTF-8
        sys.stdout.flush()
        sys.stdout.buffer.write(b"".join(os.fsencode(path) + b"\n" for path in result.files))
        sys.stdout.buffer.flush()
    for problem in result.problems:  # names from the image: escaped, one line each
        print(f"{PROG}: error: {printable(problem)}", file=sys.stderr)
    return ExitCode.FAILED if result.problems else ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(PROG, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
