"""Image references: where an `image` step's `oci` base, or a push, lives.

    docker://HOST/NAME:TAG            a tag in a registry (HOST may have :PORT)
    docker://HOST/NAME@sha256:HEX     a manifest (or index) by digest
    docker://HOST/NAME:TAG@sha256:HEX the tag is a note, the digest decides
    oci-archive:PATH                  an OCI layout packed as a tar (`--oci`'s output)
    oci:DIR                           an OCI layout directory

A docker reference without HOST (`docker://debian:bookworm`) names Docker
Hub, as the containers tools read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acigen.errors import HelperError

DOCKER_HUB = "registry-1.docker.io"
_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                   r"[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$")


@dataclass(frozen=True)
class Reference:
    transport: str               # "docker", "oci-archive" or "oci"
    host: str = ""               # docker: the registry
    name: str = ""               # docker: the repository
    tag: str | None = None
    digest: str | None = None    # "sha256:<hex>"
    path: str = ""               # oci-archive / oci: the local file or directory

    def __str__(self) -> str:
        if self.transport != "docker":
            return f"{self.transport}:{self.path}"
        text = f"docker://{self.host}/{self.name}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def reference(self) -> str:
        """What the registry API calls it: the digest, else the tag."""
        return self.digest or self.tag or "latest"


def parse(text: str) -> Reference:
    """TEXT as a reference; a malformed one is a HelperError saying what."""
    if text.startswith("docker://"):
        return _docker(text)
    for transport in ("oci-archive", "oci"):
        if text.startswith(transport + ":"):
            path = text[len(transport) + 1:]
            if not path:
                raise HelperError(f"{text!r}: no path after {transport}:")
            return Reference(transport, path=path)
    raise HelperError(f"{text!r}: not an image reference (docker://HOST/NAME:TAG, "
                      "docker://HOST/NAME@sha256:..., oci-archive:PATH or oci:DIR)")


def _docker(text: str) -> Reference:
    rest = text[len("docker://"):]
    digest = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise HelperError(f"{text!r}: the digest must be sha256: and 64 lowercase hex "
                              "digits")
    host, _, path = rest.partition("/")
    if not path or not ("." in host or ":" in host or host == "localhost"):
        host, path = DOCKER_HUB, rest if "/" in rest else f"library/{rest}"
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise HelperError(f"{text!r}: {tag!r} is not a valid tag")
    if not _HOST.fullmatch(host):
        raise HelperError(f"{text!r}: {host!r} is not a registry host")
    if not _NAME.fullmatch(path):
        raise HelperError(f"{text!r}: {path!r} is not a repository name (lowercase letters, "
                          "digits, separators)")
    if tag is None and digest is None:
        tag = "latest"
    return Reference("docker", host, path, tag, digest)
