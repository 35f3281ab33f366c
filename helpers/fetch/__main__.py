"""acigen-fetch: what ninja runs, and the command line (see obtain.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from acigen.errors import ExitCode
from acigen.fileio import json_bytes, read_json, write_if_changed
from acigen.helpers.core import buildlock
from acigen.helpers.core.common import run_main, watch_for_orphaning
from acigen.helpers.fetch.obtain import PROG, fetch
from acigen.specs import FetchSpec, pins_of


def _parse(argv: Sequence[str]) -> tuple[FetchSpec, str | None]:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Download an image archive into acigen's cache, verified.")
    parser.add_argument("url", nargs="?")
    parser.add_argument("--spec", help="a fetch spec written by acigen (instead of URL)")
    parser.add_argument("--ref", help="write the reference to the cached file here")
    parser.add_argument("--sha256")
    parser.add_argument("--sha512")
    parser.add_argument("--lock", action="append", default=[],
                        help="NAME.lock.json recording digests of unpinned URLs (repeatable)")
    parser.add_argument("--offline", action="store_true", help="use only the cache")
    parser.add_argument("--cache-dir")
    args = parser.parse_args(argv)
    if (args.url is None) == (args.spec is None):
        parser.error("give a URL or --spec FILE")
    if args.spec:
        spec = FetchSpec.from_json(read_json(args.spec), args.spec)
        spec.offline = spec.offline or args.offline
        return spec, args.ref
    pins = pins_of({"sha256": args.sha256, "sha512": args.sha512})
    spec = FetchSpec(args.url, pins, args.lock, args.offline, args.cache_dir)
    spec.check()
    return spec, args.ref


def _run(argv: list[str]) -> int:
    spec, ref_path = _parse(argv)
    if ref_path:
        buildlock.hold_for(ref_path)
    watch_for_orphaning()
    ref, summary = fetch(spec)
    if ref_path:
        write_if_changed(ref_path, json_bytes(ref))  # unchanged: restat stops the unpack
    else:
        summary += f" -> {ref['path']}"
    print(summary)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(PROG, _run, argv, user_namespace=False)


if __name__ == "__main__":
    raise SystemExit(main())
