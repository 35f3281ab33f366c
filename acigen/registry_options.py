"""acigen's registry options: how they are read, checked and repeated.

    --push REF          push the --oci image there after the build ({name} with
                        several manifests), e.g. docker://HOST/app:1.0
    --authfile FILE     credentials (default: the containers tools' auth files)
    --ca-bundle FILE    trust this PEM bundle for registries, not the system's CAs
    --tls-verify=false  do not check registries' certificates (and allow plain HTTP)
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from acigen.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("registries")
    group.add_argument("--push", metavar="REF",
                       help="after the build, push the --oci image to REF "
                            "(docker://HOST/NAME:TAG; with several manifests REF must "
                            "contain {name})")
    group.add_argument("--cache-repo", metavar="REF",
                       help="share finished layers through this repository "
                            "(docker://HOST/NAME): a cmd or ansible step whose layer is "
                            "there is pulled instead of run; one that is not is pushed")
    group.add_argument("--authfile", metavar="FILE",
                       help="registry credentials (default: $REGISTRY_AUTH_FILE, "
                            "$XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)")
    group.add_argument("--ca-bundle", metavar="FILE",
                       help="CA certificates (PEM) to trust for registries")
    group.add_argument("--tls-verify", choices=("true", "false"), default="true",
                       help="check registries' TLS certificates (default: true)")


def check(args: argparse.Namespace) -> None:
    from acigen.errors import HelperError
    from acigen.imageref import parse
    for flag, value in (("--authfile", args.authfile), ("--ca-bundle", args.ca_bundle)):
        if value is not None and not os.path.isfile(value):
            raise UsageError(f"{flag} {value}: no such file")
    if args.cache_repo is not None:
        _cache_repo(args.cache_repo)
    if args.push is None:
        return
    if args.oci is None:
        raise UsageError("--push sends the OCI image: it needs --oci FILE")
    if len(args.manifests) > 1 and "{name}" not in args.push:
        raise UsageError(f"--push {args.push}: with several manifests the reference must "
                         "contain {name}", "e.g. --push docker://HOST/{name}:latest")
    try:
        ref = parse(args.push.replace("{name}", "name"))
    except HelperError as exc:
        raise UsageError(f"--push: {exc}") from None
    if ref.transport != "docker":
        raise UsageError(f"--push {args.push}: only docker:// references are pushed to")


def _cache_repo(text: str) -> None:
    from acigen.errors import HelperError
    from acigen.imageref import parse
    try:
        ref = parse(text)
    except HelperError as exc:
        raise UsageError(f"--cache-repo: {exc}") from None
    if ref.transport != "docker" or ref.digest or text.count(":") > 2 or \
            text.rsplit("/", 1)[-1].count(":"):
        raise UsageError(f"--cache-repo {text}: give a repository, docker://HOST/NAME "
                         "(no tag: the layers are tagged by their keys)")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What helpers/registry/auth.py's Settings read (paths made absolute)."""
    return {"tls_verify": args.tls_verify != "false",
            "ca_bundle": os.path.abspath(args.ca_bundle) if args.ca_bundle else None,
            "auth_file": os.path.abspath(args.authfile) if args.authfile else None}


def regen_args(args: argparse.Namespace) -> list[str]:
    out = ["--push", args.push] if args.push else []
    out += ["--cache-repo", args.cache_repo] if args.cache_repo else []
    out += ["--authfile", os.path.abspath(args.authfile)] if args.authfile else []
    out += ["--ca-bundle", os.path.abspath(args.ca_bundle)] if args.ca_bundle else []
    return out + (["--tls-verify", "false"] if args.tls_verify == "false" else [])


def push_refs(args: argparse.Namespace, name_of: Callable[[str], str]) -> tuple[str | None, ...]:
    """Per manifest: where its image is pushed, if anywhere."""
    if args.push is None:
        return tuple(None for _ in args.manifests)
    return tuple(args.push.replace("{name}", name_of(m)) for m in args.manifests)
