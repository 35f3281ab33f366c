"""One run of the compiler: which file to write, and every path relative to it.

Paths in a generated file are relative to its *base directory*: where ninja
or make runs.  That is the file's own directory, except with `--embed
PREFIX`, where it is the parent build's directory, PREFIX being the path
from there to the generated file's directory.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from acigen import manifest, records, registry_options
from acigen.errors import UsageError
from acigen.plan import Options
from acigen.render import Setup

DEFAULT_FILE = {"ninja": "build.ninja", "make": "Makefile", "dot": "build.ninja"}
# stands for a directory above PREFIX's `..` that we cannot name; only ever
# used in lexical path arithmetic, never created or opened
UNNAMED = ".acigen-unnamed-parent"


def source_date_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds")
    return int(value)


def embed_base(file_dir: str, prefix: str) -> str:
    """The directory D with D/PREFIX == FILE_DIR (lexically)."""
    if os.path.isabs(prefix):
        raise UsageError(f"--embed {prefix}: PREFIX must be a relative path",
                         "the path from the parent build's directory to this file's")
    parts = [p for p in os.path.normpath(prefix).split("/") if p != "."]
    ups = [p for p in parts if p == ".."]
    names = parts[len(ups):]
    tail = file_dir.split("/")[len(file_dir.split("/")) - len(names):]
    if tail != names:
        raise UsageError(f"--embed {prefix}: the generated file's directory {file_dir} "
                         f"does not end in {'/'.join(names)}",
                         "PREFIX is the path from the parent build's directory to the "
                         "directory of -f FILE")
    base = file_dir
    for _ in names:
        base = os.path.dirname(base)
    for index in range(len(ups)):
        base = os.path.join(base, f"{UNNAMED}-{index}")
    return base


class Invocation:
    """Paths of one run, all relative to the base directory."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.format = "dot" if args.dot else args.format
        self.check(args)
        self.build_file = os.path.abspath(args.file or DEFAULT_FILE[self.format])
        self.file_dir = os.path.dirname(self.build_file)
        self.embed = os.path.normpath(args.embed) if args.embed is not None else None
        self.base_dir = embed_base(self.file_dir, self.embed) if self.embed else self.file_dir
        self.builddir = os.path.abspath(args.builddir) if args.builddir else \
            os.path.join(self.file_dir, ".acigen")

    def check(self, args: argparse.Namespace) -> None:
        if args.output and len(args.manifests) > 1:
            raise UsageError("-o/--output needs exactly one manifest",
                             "each image is then named after its manifest file")
        for flag, value in (("--oci", args.oci), ("--docker-archive", args.docker_archive)):
            if value is not None and len(args.manifests) > 1 and "{name}" not in value:
                raise UsageError(f"{flag} {value}: with several manifests the file name "
                                 "must contain {name}", f"e.g. {flag} {{name}}.tar")
        if args.oci is None and (args.docker_archive is not None or args.squash
                                 or args.oci_compression):
            raise UsageError("--docker-archive, --squash and --oci-compression go with --oci")
        registry_options.check(args)
        if args.gnupg_home and not args.sign:
            raise UsageError("--gnupg-home goes with --sign")
        if args.jobs_fetch < 1:
            raise UsageError("--jobs-fetch must be at least 1")
        if args.chunk_size is not None and not 1 <= args.chunk_size <= 1024:
            raise UsageError("--chunk-size is in MiB, from 1 to 1024")
        if self.format == "dot" and (args.build or args.explain or args.embed is not None):
            raise UsageError("--dot only prints the graph: it cannot be combined with "
                             "-b, --explain or --embed")
        if args.embed is not None and (args.build or args.explain):
            raise UsageError("an embedded file is built by its parent: --embed cannot be "
                             "combined with -b or --explain")
        if args.explain and (self.format != "ninja" or args.build):
            raise UsageError("--explain asks ninja: it needs the ninja format and no -b")

    def rel(self, path: str) -> str:
        return os.path.relpath(os.path.abspath(path), self.base_dir)

    def here(self, rel: str) -> str:
        """The real path of REL (relative to the base directory)."""
        return os.path.normpath(os.path.join(self.base_dir, rel))

    def output_for(self, manifest_path: str) -> str:
        """An image's file: -o, else NAME.aci beside the build file."""
        if self.args.output:
            return self.rel(self.args.output)
        return self.rel(os.path.join(self.file_dir, manifest.output_name(manifest_path)
                                     + ".aci"))

    def named(self, template: str | None, manifest_path: str) -> str | None:
        """An --oci/--docker-archive FILE for one manifest ({name} filled in)."""
        if template is None:
            return None
        return self.rel(template.replace("{name}", manifest.output_name(manifest_path)))

    def options(self, sign: dict[str, object] | None = None) -> Options:
        a = self.args
        oci = tuple(self.named(a.oci, m) for m in a.manifests)
        docker = tuple(self.named(a.docker_archive, m) for m in a.manifests)
        return Options(
            builddir=self.rel(self.builddir),
            outputs=tuple(self.output_for(m) for m in a.manifests),
            compression=a.compression, layer_mode=a.layer_mode, runtime=a.runtime,
            source_date_epoch=source_date_epoch(), fetch_jobs=a.jobs_fetch,
            cache_dir=os.path.abspath(a.cache_dir) if a.cache_dir else None,
            offline=a.offline, oci_outputs=oci, docker_outputs=docker, squash=a.squash,
            oci_compression=a.oci_compression, sign=sign,
            chunk_size=a.chunk_size * 2**20 if a.chunk_size else None,
            base_from_builddir=os.path.relpath(self.base_dir, self.builddir),
            registry=registry_options.settings(a),
            push_refs=registry_options.push_refs(a, manifest.output_name),
            cache_repo=a.cache_repo)

    def regen_args(self) -> list[str]:
        """acigen's arguments as the build must repeat them (from the base dir)."""
        a = self.args
        out = ["-f", self.rel(self.build_file), "-B", self.rel(self.builddir),
               "-C", a.compression]
        if self.format != "ninja":
            out += ["--format", self.format]
        if self.embed is not None:
            out += ["--embed", self.embed]
        if a.output:
            out += ["-o", self.rel(a.output)]
        if a.layer_mode != "auto":
            out += ["--layer-mode", a.layer_mode]
        if a.runtime:
            out += ["--runtime", a.runtime]
        if a.jobs_fetch != 4:
            out += ["--jobs-fetch", str(a.jobs_fetch)]
        if a.chunk_size:
            out += ["--chunk-size", str(a.chunk_size)]
        if a.cache_dir:
            out += ["--cache-dir", os.path.abspath(a.cache_dir)]
        if a.offline:
            out += ["--offline"]
        out += self.output_args()
        return out + [self.rel(m) for m in a.manifests]

    def output_args(self) -> list[str]:
        """The OCI and signing options, as the build must repeat them."""
        a = self.args
        out = []
        for flag, value in (("--oci", a.oci), ("--docker-archive", a.docker_archive)):
            if value is not None:
                out += [flag, self.rel(value)]
        out += ["--squash"] if a.squash else []
        out += ["--oci-compression", a.oci_compression] if a.oci_compression else []
        out += ["--sign", a.sign] if a.sign else []
        out += ["--gnupg-home", os.path.abspath(a.gnupg_home)] if a.gnupg_home else []
        return out + registry_options.regen_args(a)

    def setup(self, options: Options) -> Setup:
        builddir = options.builddir
        name = records.own_name(self.builddir, self.build_file)  # the regeneration's stamp
        return Setup(
            python=os.environ.get("ACIGEN_PYTHON") or sys.executable,
            regen_args=self.regen_args(), build_file=self.rel(self.build_file),
            builddir=builddir, fetch_jobs=options.fetch_jobs, embed_prefix=self.embed,
            stamp=None if self.embed or self.format != "ninja" else
            os.path.join(builddir, name + ".stamp"),
            fetch_pool="acigen_fetch" + (pool_suffix(self.rel(self.build_file))
                                         if self.embed else ""),
            make_deps=os.path.join(builddir, name + ".d") if self.format == "make"
            and not self.embed else None)


def pool_suffix(build_file: str) -> str:
    """Pools are global in ninja: one per embedded file, named after it."""
    return "_" + re.sub(r"[^A-Za-z0-9_]", "_", build_file)
