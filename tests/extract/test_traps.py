"""A hostile image cannot make extract read, list or delete anything on the host:
its symlinks (absolute, relative with `..`, `/etc -> /`) are resolved inside the root,
and a mount inside the root stops the prune before it starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.extract.support import MODULE, paths, run_extract, snapshot


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A host directory that image symlinks point at."""
    top = tmp_path / "host-dir"
    (top / "sub").mkdir(parents=True)
    (top / "secret").write_text("host data\n")
    (top / "sub/passwd").write_text("host passwd\n")
    return top


@pytest.fixture
def hostile(tmp_path: Path, sentinel: Path) -> Path:
    top = tmp_path / "image"
    (top / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", top / "bin/busybox")
    (top / "etc").symlink_to("/")                                  # /etc/passwd is /passwd
    (top / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (top / "x").symlink_to("../" * 8 + str(sentinel).lstrip("/"))  # relative, escaping
    (top / "abs").symlink_to(sentinel)                             # absolute host path
    (top / "y").symlink_to(sentinel)                               # not kept: deleted
    (top / "var/lib").mkdir(parents=True)
    (top / "var/lib/z").symlink_to("../../../../../../" + str(sentinel).lstrip("/"))
    return top


def test_image_symlinks_never_lead_to_the_host(hostile: Path, sentinel: Path) -> None:
    host_before = snapshot(sentinel)
    result = run_extract(hostile, "--binary", "/bin/busybox",
                         "--keep", "/etc/passwd", "--keep", "/etc/etc/etc/passwd",
                         "--keep", "/x", "--keep", "/abs", "--keep", "/x/*",
                         "--keep", "/abs/**", "--keep", "/var/lib/z/sub/*")
    assert result.returncode == 0, result.stderr
    assert snapshot(sentinel) == host_before
    # the links are kept as links; /etc/passwd was found at the image's /passwd
    assert paths(hostile) == {"/", "/bin", "/bin/busybox", "/etc", "/passwd", "/x", "/abs"}
    assert (hostile / "abs").readlink() == sentinel
    # globs through them match nothing: the host directories were never listed
    for pattern in ("/x/*", "/abs/**", "/var/lib/z/sub/*"):
        assert f"warning: keep {pattern}: the pattern matches nothing" in result.stdout
    assert "warning: keep /x: a symlink to nothing" in result.stdout


def test_a_host_file_behind_a_link_is_not_in_the_image(hostile: Path, sentinel: Path) -> None:
    before = snapshot(hostile)
    result = run_extract(hostile, "--binary", "/bin/busybox", "--keep", "/abs/secret",
                         "--keep", "/x/sub/passwd")
    assert result.returncode == 1
    assert "keeps not in the image: /abs/secret, /x/sub/passwd" in result.stderr
    assert snapshot(hostile) == before
    assert (sentinel / "secret").read_text() == "host data\n"


def test_a_binary_behind_a_link_to_the_host_is_not_found(hostile: Path) -> None:
    shutil.copy2("/bin/busybox", hostile.parent / "host-dir" / "busybox")
    result = run_extract(hostile, "--binary", "/abs/busybox")
    assert result.returncode == 1
    assert "binary /abs/busybox: not in the image" in result.stderr


def test_a_mount_inside_the_root_stops_the_prune(hostile: Path, no_mount_leaks) -> None:
    before = snapshot(hostile)
    # the tmpfs lives in a private mount namespace that dies with the command
    script = (f'mount -t tmpfs acigen-test "{hostile}/var/lib" && touch "{hostile}/var/lib/f" '
              f'&& exec "{sys.executable}" -m {MODULE} --root "{hostile}" '
              "--binary /bin/busybox")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             script], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{hostile}/var/lib is a mount point inside the root" in result.stderr
    assert snapshot(hostile) == before
