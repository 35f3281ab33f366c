"""Digest pins (`sha256` / `sha512` in a step): their form, and checking a file."""

from __future__ import annotations

import os

from acigen.errors import HelperError


def file_digest(path: str, algo: str) -> str:
    import hashlib  # only pinned steps pay for loading OpenSSL
    digest = hashlib.new(algo)
    with open(path, "rb", buffering=0) as src:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str, pins: dict[str, str], what: str | None = None) -> None:
    """Fail unless the file at PATH has the pinned digests."""
    if pins and not os.path.isfile(path):
        raise HelperError(f"{path}: only a regular file can be checked against a digest")
    for algo, expected in pins.items():
        actual = file_digest(path, algo)
        if actual != expected:
            raise HelperError(f"{what or path}: {algo} mismatch: expected {expected}, "
                              f"got {actual}")
