"""What `acigen run` reads from an image before running anything: a
malformed manifest is one line and acigen run's own failure status (125),
never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acigen.helpers.run.__main__ import FAILED
from tests.image import rawtar

GOOD_APP = {"exec": ["/bin/sh"], "user": "0", "group": "0"}


def aci(path: Path, manifest: object) -> Path:
    text = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    path.write_bytes(rawtar.member(b"manifest", text) + rawtar.header(b"rootfs/", typeflag=b"5")
                     + rawtar.END)
    return path


def acigen_run(image: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.run([sys.executable, "-m", "acigen.helpers.run", str(image)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("app", "where"), [
    ({**GOOD_APP, "exec": "/bin/sh"}, "/app/exec: expected a list"),
    ({**GOOD_APP, "environment": {"A": "1"}}, "/app/environment: expected a list"),
    ({**GOOD_APP, "eventHandlers": ["pre-start"]}, "/app/eventHandlers/0: expected an object"),
    ({**GOOD_APP, "isolators": "none"}, "/app/isolators: expected a list"),
    ({**GOOD_APP, "user": 0}, "/app/user: expected a string"),
    ({**GOOD_APP, "mountPoints": [{"name": 1}]}, "/app/mountPoints/0"),
])
def test_a_malformed_manifest_is_one_line(tmp_path: Path, app: object, where: str) -> None:
    image = aci(tmp_path / "bad.aci", {"acKind": "ImageManifest", "acVersion": "0.8.11",
                                       "name": "example.com/bad", "app": app})
    result = acigen_run(image, tmp_path / "cache")
    assert result.returncode == FAILED, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"acigen run: error: {image}: manifest:{where}"), line


@pytest.mark.parametrize("manifest", [b"[]", b"{\"acKind\": \"ImageManifest\", \"name\": 1}",
                                      b"\xff\xfe", b"[" * 100_000])
def test_a_manifest_that_is_not_one_is_one_line(tmp_path: Path, manifest: bytes) -> None:
    result = acigen_run(aci(tmp_path / "bad.aci", manifest), tmp_path / "cache")
    assert result.returncode == FAILED and len(result.stderr.splitlines()) == 1, result.stderr


def test_a_fifo_for_etc_passwd_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """app.user is a name: /etc/passwd is read; a FIFO there blocked forever."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")
    code = ("import sys\nfrom acigen.errors import HelperError\n"
            "from acigen.helpers.run.config import resolve_id\n"
            "try:\n    resolve_id(sys.argv[1], 'www', 'user')\n"
            "except HelperError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True,
                            text=True, timeout=30, check=True)
    assert result.stdout == "/etc/passwd in the image: not a regular file\n"
