"""Image references as the step's `oci` field and --push read them."""

from __future__ import annotations

import pytest

from acigen.errors import HelperError
from acigen.imageref import parse

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "host", "name", "tag", "digest"), [
    ("docker://127.0.0.1:5000/debian:bookworm", "127.0.0.1:5000", "debian", "bookworm", None),
    (f"docker://r.example/a/b@{DIGEST}", "r.example", "a/b", None, DIGEST),
    (f"docker://r.example/a:1@{DIGEST}", "r.example", "a", "1", DIGEST),
    ("docker://localhost/x", "localhost", "x", "latest", None),
    ("docker://debian:bookworm", "registry-1.docker.io", "library/debian", "bookworm", None),
    ("docker://someone/app", "registry-1.docker.io", "someone/app", "latest", None),
])
def test_docker_references(text: str, host: str, name: str, tag: str | None,
                           digest: str | None) -> None:
    ref = parse(text)
    assert (ref.transport, ref.host, ref.name, ref.tag, ref.digest) == \
        ("docker", host, name, tag, digest)
    assert parse(str(ref)) == ref


@pytest.mark.parametrize(("text", "message"), [
    ("docker://r.example/Debian:1", "is not a repository name"),
    ("docker://r.example/x@sha256:abc", "64 lowercase hex digits"),
    ("docker://r.example/x:bad tag", "is not a valid tag"),
    ("oci-archive:", "no path after oci-archive:"),
    ("http://r.example/x", "not an image reference"),
])
def test_malformed_references(text: str, message: str) -> None:
    with pytest.raises(HelperError, match=message):
        parse(text)


def test_local_references() -> None:
    assert (parse("oci:dir").transport, parse("oci:dir").path) == ("oci", "dir")
    assert parse("oci-archive:a/b.tar").path == "a/b.tar"
