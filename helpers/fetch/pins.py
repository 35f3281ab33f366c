"""Digest pins (`sha256` / `sha512` in a step): their form, and checking a file."""

from __future__ import annotations

import os
from typing import Any

from acigen.errors import HelperError

DIGESTS = {"sha256": 64, "sha512": 128}


def pins_of(spec: dict[str, Any]) -> dict[str, str]:
    """The sha256/sha512 pins in SPEC, checked for form."""
    pins = {}
    for algo, length in DIGESTS.items():
        value = spec.get(algo)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) != length or \
                value.strip("0123456789abcdef"):
            raise HelperError(f"{algo} must be {length} lowercase hex digits, got {value!r}")
        pins[algo] = value
    return pins


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
